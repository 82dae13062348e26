"""Every answer changed on update, and changed back, from every recorded release and from this tree.

A throwaway clone of this repository gets the tags of the releases CHANGELOG.md records (the release
workflow's own `scripts/releases.py tag`), plus a commit of the working tree. For each covering answer
set, a project is generated from each release and from the working tree, a team edits it (its README,
Makefile, config, a template module, a module and a test of its own) and commits. Then, one question at
a time, `copier update` changes the answer (to the working tree's version), and changes it back.

Each result must be exactly what a fresh copy with those answers gives, with the team's edits applied:
byte for byte, every file. So nothing is lost, nothing is left in conflict, and the result is as green as
a fresh project (which the covering-set and render tests prove); `make check` also runs on a sample.
`package_name` is the exception, refused before anything is written: the hand rename the generated
README documents is tested instead.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .helpers import (
    COVERING_SET,
    TEMPLATE,
    commit,
    files_of,
    git_identity,
    git_init,
    project_env,
    render,
    run,
    update,
)
from .test_questions import QUESTIONS

sys.path.insert(0, str(TEMPLATE / "scripts"))
import releases  # the template repository's own script, as its workflow runs it

pytestmark = pytest.mark.slow

RELEASES = [release.version for release in releases.recorded()]
TEAM_MODULE = '"""The team\'s own features."""\n\n\ndef ratio(a: float, b: float) -> float:\n    return a / b\n'
TEAM_TEST = (
    '"""The team\'s own test."""\n\nfrom {package}.team_features import ratio\n\n\n'
    "def test_ratio() -> None:\n    assert ratio(6, 3) == 2\n"
)
TEAM_HELPER = '\n\ndef team_helper() -> str:\n    """A helper the team added to a template module."""\n    return "ours"\n'


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A clone with every recorded release tagged, and the working tree committed on top: (path, ref)."""
    clone = tmp_path_factory.mktemp("template") / "repo"
    env = git_identity()
    run(["git", "clone", "--quiet", "--no-hardlinks", str(TEMPLATE), str(clone)], TEMPLATE, env)
    for folder in ("includes", "template"):
        shutil.rmtree(clone / folder)
        shutil.copytree(
            TEMPLATE / folder,
            clone / folder,
            ignore=shutil.ignore_patterns("__pycache__", "*.py[co]"),
        )
    for name in ("copier.yml", "CHANGELOG.md"):
        shutil.copy2(TEMPLATE / name, clone / name)
    assert releases.tag(clone) == RELEASES  # the same function the release workflow runs
    run(["git", "add", "--all"], clone, env)
    run(["git", "commit", "--quiet", "--allow-empty", "-m", "The working tree"], clone, env)
    return clone, run(["git", "rev-parse", "HEAD"], clone).stdout.strip()


def alternatives(answers: dict[str, Any]) -> list[dict[str, Any]]:
    """Changes to try, one update each: every question's answer, other than the current one. The
    questions that only fill in text are changed together (one update); package_name is refused."""
    flip = {
        "task": {"classification": "regression", "regression": "classification"},
        "ml_framework": {"scikit-learn": "pytorch", "pytorch": "scikit-learn"},
        "experiment_tracking": {"mlflow": "none", "none": "mlflow"},
        "ci": {"github": "none", "none": "github"},
    }
    changes: list[dict[str, Any]] = [
        {
            "project_name": "Renamed Project",
            "project_slug": "renamed-project",
            "description": "Forecasts what the team needs next.",
            "author_name": "Another Team",
            "author_email": "another-team@example.org",
            "license": "MIT" if answers["license"] != "MIT" else "Apache-2.0",
        },
        {"python_version": "3.13" if answers["python_version"] != "3.13" else "3.12"},
        {"use_docker": not answers["use_docker"]},
    ]
    changes += [{key: values[answers[key]]} for key, values in flip.items()]
    if answers["ci"] == "github":
        changes.append({"template_updates": not answers["template_updates"]})
    if answers["ml_framework"] == "pytorch":
        changes.append({"torch_index": "pypi" if answers.get("torch_index") != "pypi" else "cpu"})
    return changes


def recorded(project: Path) -> dict[str, Any]:
    """The answers a project records (Copier's own keys aside): what a fresh copy needs to match it."""
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    return {key: value for key, value in answers.items() if not key.startswith("_")}


def team_edits(project: Path, package: str) -> None:
    """What a team does to its project in its first weeks; the same edits on any render."""

    def edit(relative: str, old: str, new: str) -> None:
        path = project / relative
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{relative} has no {old!r}"
        path.write_text(text.replace(old, new, 1), encoding="utf-8")

    edit("README.md", "## Quick start\n", "## Quick start\n\nOur notes: ask Ada about the data.\n")
    edit("Makefile", ".DEFAULT_GOAL := help\n", ".DEFAULT_GOAL := help\nTEAM := fraud\n")
    edit("configs/train.yaml", "seed: 42\n", "seed: 7\n")
    edit("configs/train.yaml", "  test_size: 0.25 ", "  test_size: 0.3 ")
    features = project / "src" / package / "features.py"
    features.write_text(features.read_text(encoding="utf-8") + TEAM_HELPER, encoding="utf-8")
    (project / "src" / package / "team_features.py").write_text(TEAM_MODULE, encoding="utf-8")
    (project / "tests" / "test_team_features.py").write_text(
        TEAM_TEST.format(package=package), encoding="utf-8"
    )


class Expected:
    """Fresh copies of the working tree's version with the team's edits, by answers (cached)."""

    def __init__(self, root: Path, template: Path, ref: str) -> None:
        self.root, self.template, self.ref = root, template, ref
        self.cache: dict[str, dict[str, bytes]] = {}

    def tree(self, answers: dict[str, Any]) -> dict[str, bytes]:
        key = repr(sorted(answers.items()))
        if key not in self.cache:
            dest = self.root / f"expected-{len(self.cache)}"
            render(dest, answers, src=self.template, vcs_ref=self.ref)
            team_edits(dest, answers["package_name"])
            self.cache[key] = snapshot(dest)
            shutil.rmtree(dest)
        return self.cache[key]


def snapshot(project: Path) -> dict[str, bytes]:
    return {name: (project / name).read_bytes() for name in sorted(files_of(project))}


def assert_same(project: Path, expected: dict[str, bytes], what: str) -> None:
    actual = snapshot(project)
    missing, extra = sorted(expected.keys() - actual.keys()), sorted(
        actual.keys() - expected.keys()
    )
    differing = sorted(k for k in expected.keys() & actual.keys() if expected[k] != actual[k])
    detail = ""
    if differing:
        first = differing[0]
        detail = f"\n--- {first} as updated ---\n{actual[first].decode(errors='replace')[:3000]}"
    assert not missing, f"{what}: missing {missing}"
    assert not extra, f"{what}: extra {extra}"
    assert not differing, f"{what}: different {differing}{detail}"
    conflicts = subprocess.run(
        ["python3", "scripts/check_conflicts.py"], cwd=project, capture_output=True, text=True
    )
    assert conflicts.returncode == 0, f"{what}: {conflicts.stdout}"


def starts() -> list[str]:
    return [*RELEASES, "working-tree"]


@pytest.mark.parametrize("start", starts())
@pytest.mark.parametrize("answers", COVERING_SET, ids=[f"set{i}" for i in range(len(COVERING_SET))])
def test_every_answer_changes_and_changes_back_keeping_team_edits(
    versions: tuple[Path, str], tmp_path: Path, answers: dict[str, Any], start: str
) -> None:
    template, head = versions
    expected = Expected(tmp_path, template, head)
    project = tmp_path / "project"
    render(project, answers, src=template, vcs_ref=head if start == "working-tree" else start)
    git_init(project)
    original = recorded(project)
    team_edits(project, original["package_name"])
    base = commit(project, "Team edits")

    questions: set[str] = set()
    for change in alternatives(original):
        run(["git", "reset", "--quiet", "--hard", base], project)
        run(["git", "clean", "--quiet", "-d", "--force"], project)  # what the last update created
        # From a release, the answer changes during the update to this version; from this version, at it.
        update(project, head, data=change)
        assert_same(project, expected.tree(original | change), f"{change} from {start}")
        commit(project, f"{change}")
        # Back: a question the start did not ask (new since, or asked only with another answer,
        # as torch_index) goes back to its default.
        back = original | {key: QUESTIONS[key]["default"] for key in change if key not in original}
        update(project, head, data=back)
        assert_same(project, expected.tree(back), f"{change} back from {start}")
        questions |= change.keys()
    assert questions | {"package_name"} >= original.keys()


def test_a_new_package_name_is_refused_and_the_documented_rename_carries_the_team_over(
    versions: tuple[Path, str], tmp_path: Path
) -> None:
    template, head = versions
    project = render(tmp_path / "project", src=template, vcs_ref=head)
    git_init(project)
    team_edits(project, "my_ml_project")
    base = commit(project, "Team edits")

    with pytest.raises(ValueError, match="package_name cannot change on update"):
        update(project, head, data={"package_name": "churn"})
    assert run(["git", "status", "--porcelain"], project).stdout == ""
    assert run(["git", "rev-parse", "HEAD"], project).stdout.strip() == base

    # The README's procedure, as written there.
    readme = (project / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Renaming the package") :]
    block = section[
        section.index("```text\n") + 8 : section.index("```\n", section.index("```text"))
    ]
    commands = [line.split("  #")[0].strip() for line in block.splitlines()]
    assert commands[0] == "git mv src/my_ml_project src/NEW_NAME"
    for command in commands[:2]:
        run(["bash", "-c", command.replace("NEW_NAME", "churn")], project)
    commit(project, "Rename the package to churn")

    update(project, head)

    assert run(["git", "status", "--porcelain"], project).stdout == ""  # nothing left to change
    fresh = tmp_path / "fresh"
    render(fresh, {"package_name": "churn"}, src=template, vcs_ref=head)
    team_edits(fresh, "churn")
    assert_same(project, snapshot(fresh), "hand rename")


def test_an_update_from_the_first_release_with_new_answers_passes_make_check(
    versions: tuple[Path, str], tmp_path: Path
) -> None:
    """A sample proved green by running it: regression without tracking, from the oldest release."""
    template, head = versions
    project = render(tmp_path / "project", src=template, vcs_ref=RELEASES[0])
    git_init(project)
    team_edits(project, "my_ml_project")
    commit(project, "Team edits")

    update(project, head, data={"task": "regression", "experiment_tracking": "none"})

    env = project_env()
    run(["uv", "lock", "--quiet"], project, env)
    run(["make", "check"], project, env)
    run(["make", "data", "train"], project, env)
    assert "seed: 7" in (project / "configs" / "train.yaml").read_text(encoding="utf-8")


def test_a_project_trained_on_the_last_release_keeps_its_champion_through_the_update(
    versions: tuple[Path, str], tmp_path: Path
) -> None:
    """Its champion (models/metadata.json and copies, as the last release promoted) stays the
    champion after `copier update`, loaded once a promote records the SHA-256 that release did not
    (a pickle is never loaded unchecked): then predict, evaluate on its own held-out rows, a plain
    train leaves it; the next promotion records champions the new way."""
    template, head = versions
    project = render(tmp_path / "project", src=template, vcs_ref=RELEASES[-1])
    git_init(project)
    env = project_env()
    run(["uv", "sync", "--quiet"], project, env)
    run(["make", "data", "train"], project, env)
    old = json.loads((project / "models" / "metadata.json").read_text(encoding="utf-8"))
    commit(project, "Trained on the last release")  # models/ and data/ are not in git

    update(project, head)
    run(["uv", "lock", "--quiet"], project, env)
    run(["uv", "sync", "--quiet"], project, env)

    refused = run(["make", "evaluate"], project, env, check=False)
    assert refused.returncode == 2
    assert f"promote {old['run_id']}` records it" in refused.stderr
    cli = ["uv", "run", "--frozen", "my-ml-project"]
    run([*cli, "promote", old["run_id"]], project, env)  # what CHANGELOG.md tells teams to do
    run(["make", "evaluate", "predict"], project, env)
    report = json.loads((project / "reports" / "metrics.json").read_text(encoding="utf-8"))
    assert report["run_id"] == old["run_id"]
    assert report["model"] == {
        key.split(".", 1)[1]: value
        for key, value in old["metrics"].items()
        if key.startswith("model.")
    }  # its own held-out rows, found again from its seed and test size
    run(["make", "train"], project, env)
    records = (project / "reports" / "runs.jsonl").read_text(encoding="utf-8").splitlines()
    new = json.loads(records[-1])["run_id"]
    assert new != old["run_id"]
    run([*cli, "promote", new], project, env)
    champion = project / "models" / "champions" / "my-ml-project-wine.json"
    assert json.loads(champion.read_text(encoding="utf-8"))["run_id"] == new
    assert not (project / "models" / "model.joblib").exists()
    assert not (project / "models" / "metadata.json").exists()


def test_every_recorded_release_is_a_commit_of_this_repository() -> None:
    assert RELEASES, "CHANGELOG.md records no release"
    for release in releases.recorded():
        found = run(
            ["git", "cat-file", "-e", f"{release.commit}^{{commit}}"], TEMPLATE, check=False
        )
        assert (
            found.returncode == 0
        ), f"{release.version}: {release.commit} is not here (a shallow clone? fetch the history)"
