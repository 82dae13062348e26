"""`copier update` keeps a team's edits.

Each test builds a throwaway template repository with tagged versions (1.0.0 is this tree; 1.1.0 is this
tree with the kind of change a template release makes), generates a project from 1.0.0, commits, edits it
as a team would, updates, and checks the result. All through Copier's API, never trusting the template.

An update takes over a second (two clones, three renders): the quick loop keeps the two that matter most
(edits survive a release, a clash is a conflict) and the cheap refusals; the rest are `slow`.
"""

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import copier
import pytest
import yaml
from copier.errors import UserMessageError

from .helpers import (
    COVERING_SET,
    commit,
    copy_template_tree,
    files_of,
    git_identity,
    git_init,
    project_env,
    render,
    run,
    update,
)

PACKAGE = "src/my_ml_project"
NEW_FILE = "CODE_OF_CONDUCT.md"
REMOVED_FILE = "notebooks/01-explore-data.ipynb"
REMOVED_AND_EDITED = ".editorconfig"


class TemplateRepo:
    """A git repository holding a copy of this template, to tag versions of it."""

    def __init__(self, path: Path) -> None:
        self.path = copy_template_tree(path)
        run(["git", "init", "--quiet", "--initial-branch=main"], path)

    def edit(self, relative: str, change: Callable[[str], str]) -> None:
        file = self.path / relative
        file.write_text(change(file.read_text(encoding="utf-8")), encoding="utf-8")

    def release(self, version: str) -> None:
        env = git_identity()
        run(["git", "add", "--all"], self.path, env)
        run(
            ["git", "commit", "--quiet", "--allow-empty", "-m", f"Release {version}"],
            self.path,
            env,
        )
        run(["git", "tag", version], self.path, env)

    def make_a_release_with_typical_changes(self, version: str = "1.1.0") -> None:
        """Adds a file, removes two (one of which teams edit), and appends a Makefile target."""
        (self.path / "template" / NEW_FILE).write_text("# Code of conduct\n", encoding="utf-8")
        (self.path / "template" / f"{REMOVED_FILE}.jinja").unlink()
        (self.path / "template" / REMOVED_AND_EDITED).unlink()
        self.edit(
            "template/Makefile.jinja",
            lambda text: text + "\nhello: ## Say hello\n\t@echo hello\n",
        )
        self.release(version)


@pytest.fixture
def template(tmp_path: Path) -> TemplateRepo:
    repo = TemplateRepo(tmp_path / "template")
    repo.release("1.0.0")
    return repo


def generate(
    template: TemplateRepo,
    dest: Path,
    answers: dict[str, Any] | None = None,
    version: str = "1.0.0",
) -> Path:
    render(dest, answers, src=template.path, vcs_ref=version)
    git_init(dest)
    return dest


def changed_files(project: Path) -> set[str]:
    """Paths git reports as changed, added, removed or unmerged since the last commit."""
    lines = run(["git", "status", "--porcelain", "--untracked-files=all"], project).stdout
    return {line[3:] for line in lines.splitlines()}


def conflict_check(project: Path) -> subprocess.CompletedProcess[str]:
    """The generated project's own check for conflict leftovers (make lint, the hook, update-template)."""
    return run(["python3", "scripts/check_conflicts.py"], project, check=False)


def recorded(project: Path) -> dict[str, Any]:
    answers: dict[str, Any] = yaml.safe_load(
        (project / ".copier-answers.yml").read_text(encoding="utf-8")
    )
    return answers


def test_team_edits_survive_an_update_that_adds_removes_and_changes_files(
    template: TemplateRepo, tmp_path: Path
) -> None:
    project = generate(template, tmp_path / "project")
    # The team's edits: a file the template will not touch, one it will change elsewhere, one it will
    # remove; a file deleted, a file added.
    readme = (project / "README.md").read_text(encoding="utf-8") + "\n## Our notes\n\nKeep me.\n"
    (project / "README.md").write_text(readme, encoding="utf-8")
    makefile = (project / "Makefile").read_text(encoding="utf-8")
    (project / "Makefile").write_text(
        makefile.replace(".DEFAULT_GOAL := help\n", ".DEFAULT_GOAL := help\nTEAM := ours\n"),
        encoding="utf-8",
    )
    (project / REMOVED_AND_EDITED).write_text("root = true\n# team setting\n", encoding="utf-8")
    (project / "data" / "interim" / ".gitkeep").unlink()
    extra = project / PACKAGE / "extra.py"
    extra.write_text('"""Our own module."""\n', encoding="utf-8")
    commit(project)
    template.make_a_release_with_typical_changes()

    update(project)

    # 1. A file the template did not touch keeps the team's content exactly.
    assert (project / "README.md").read_text(encoding="utf-8") == readme
    # 2. Both changes to the Makefile are there, without conflict markers.
    makefile = (project / "Makefile").read_text(encoding="utf-8")
    assert "TEAM := ours" in makefile
    assert "hello: ## Say hello" in makefile
    # 4. The new file appears; the removed file disappears. A removed file the team had edited is
    #    removed too, with their edits: Copier raises no conflict (so renames wait for a major version).
    assert (project / NEW_FILE).is_file()
    assert not (project / REMOVED_FILE).exists()
    assert not (project / REMOVED_AND_EDITED).exists()
    # 5. A file the team deleted stays deleted; a file they added is untouched.
    assert not (project / "data" / "interim" / ".gitkeep").exists()
    assert extra.read_text(encoding="utf-8") == '"""Our own module."""\n'
    # No conflicts anywhere, by the update workflow's own check.
    assert run(["git", "ls-files", "--unmerged"], project).stdout == ""
    assert conflict_check(project).returncode == 0
    assert recorded(project)["_commit"] == "1.1.0"


def test_both_changing_the_same_lines_shows_a_conflict_and_loses_nothing(
    template: TemplateRepo, tmp_path: Path
) -> None:
    project = generate(template, tmp_path / "project")
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text(encoding="utf-8").replace("fail_under = 85", "fail_under = 80"),
        encoding="utf-8",
    )
    commit(project)
    template.edit(
        "template/pyproject.toml.jinja",
        lambda text: text.replace("fail_under = 85", "fail_under = 90"),
    )
    template.release("1.1.0")

    update(project)

    text = pyproject.read_text(encoding="utf-8")
    assert re.search(r"^<<<<<<< ", text, flags=re.MULTILINE)
    assert re.search(r"^>>>>>>> ", text, flags=re.MULTILINE)
    assert "fail_under = 80" in text  # the team's
    assert "fail_under = 90" in text  # the template's
    assert "pyproject.toml" in run(["git", "ls-files", "--unmerged"], project).stdout
    check = conflict_check(project)
    assert check.returncode != 0
    assert "pyproject.toml: unmerged" in check.stdout


def test_conflict_leftovers_are_found_tracked_or_not(
    template: TemplateRepo, tmp_path: Path
) -> None:
    project = generate(template, tmp_path / "project")
    config = yaml.safe_load((project / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    # Run on every commit whatever is staged: an untracked .rej is never among the staged files.
    assert hooks["conflict-leftovers"]["always_run"] is True
    assert hooks["conflict-leftovers"]["pass_filenames"] is False
    assert "check-merge-conflict" in hooks
    assert conflict_check(project).returncode == 0

    (project / "Makefile.rej").write_text("@@ rejected hunk\n", encoding="utf-8")  # untracked
    notes = project / "docs" / "notes.md"  # untracked, in a new folder
    notes.parent.mkdir()
    notes.write_text("<<<<<<< before updating\nours\n=======\ntheirs\n>>>>>>> after\n", "utf-8")
    check = conflict_check(project)

    assert check.returncode == 1
    assert "Makefile.rej: hunks Copier could not apply; merge them into Makefile" in check.stdout
    assert "docs/notes.md: conflict markers" in check.stdout


@pytest.mark.slow
def test_a_rejected_hunk_stops_make_lint_and_the_commit(
    template: TemplateRepo, tmp_path: Path
) -> None:
    """The issue's case: `--conflict rej` keeps the team's line only in an untracked Makefile.rej."""
    project = generate(template, tmp_path / "project")
    env = project_env()
    run(["make", "setup"], project, env)  # the environment, uv.lock and the git hooks
    makefile = project / "Makefile"
    makefile.write_text(
        makefile.read_text(encoding="utf-8").replace(
            "CONFIG ?= configs/train.yaml\n", "CONFIG ?= configs/team.yaml\n"
        ),
        encoding="utf-8",
    )
    assert "CONFIG ?= configs/team.yaml" in makefile.read_text(encoding="utf-8")
    commit(project)
    template.edit(
        "template/Makefile.jinja",
        lambda text: text.replace("CONFIG ?= configs/train.yaml", "CONFIG ?= ./configs/train.yaml"),
    )
    template.release("1.1.0")

    update(project, conflict="rej")

    assert (project / "Makefile.rej").is_file()
    # The inner loop refuses it too: a green `make check` used to hide the lost hunk (issue 25).
    check = run(["make", "check"], project, env, check=False)
    assert check.returncode != 0
    assert "Makefile.rej: hunks Copier could not apply" in check.stdout
    lint = run(["make", "lint"], project, env, check=False)
    assert lint.returncode != 0
    assert "Makefile.rej" in lint.stdout
    committed = run(["git", "commit", "-am", "Update"], project, git_identity(env), check=False)
    assert committed.returncode != 0
    assert "Makefile.rej" in committed.stdout + committed.stderr


@pytest.mark.slow
def test_a_team_target_survives_answer_changes_that_change_the_targets(
    template: TemplateRepo, tmp_path: Path
) -> None:
    """A team adds its own target the Makefile's way (its .PHONY line beside it); answers that add or
    drop the template's targets (MLflow's UI, Docker's) are merged without a conflict. Before, one
    computed .PHONY line conflicted on 4 of 10 answer changes (issue 25)."""
    project = generate(template, tmp_path / "project")
    team = "\n.PHONY: report\nreport: ## Our weekly report\n\t@echo report\n"
    makefile = project / "Makefile"
    makefile.write_text(makefile.read_text(encoding="utf-8") + team, encoding="utf-8")
    commit(project)

    for answers in ({"experiment_tracking": "none"}, {"use_docker": False}, {"use_docker": True}):
        update(project, vcs_ref=copier.VcsRef.CURRENT, data=answers)
        assert conflict_check(project).returncode == 0, answers
        text = makefile.read_text(encoding="utf-8")
        assert text.endswith(team), answers
        commit(project)
    assert "mlflow-ui" not in makefile.read_text(encoding="utf-8")
    assert "docker-build:" in makefile.read_text(encoding="utf-8")


@pytest.mark.slow
def test_a_merged_bot_bump_and_a_template_release_touch_different_lines(
    template: TemplateRepo, tmp_path: Path
) -> None:
    """Dependabot, as the generated dependabot.yml lets it, bumps what the team added (here an action
    of its own in the CI workflow) and uv.lock, never the template's pins; the next release bumps
    the template's actions and a dependency bound. The update merges both without a conflict
    (issue 25: once a team merged bot bumps of the same pins, releases conflicted in 3 files)."""
    project = generate(template, tmp_path / "project")
    workflow = project / ".github" / "workflows" / "ci.yml"
    team_step = (
        "      - uses: actions/cache@{} # {}\n        with: {{path: ~/.cache, key: cache}}\n"
    )
    text = workflow.read_text(encoding="utf-8")
    first = text.index("      - name: Set up the environment")  # after checkout and uv, as teams do
    workflow.write_text(
        text[:first] + team_step.format("1" * 40, "v4.0.0") + text[first:], encoding="utf-8"
    )
    (project / "uv.lock").write_text("# the team's lock\nversion = 1\n", encoding="utf-8")
    commit(project, "Our own cache step")
    # The bot's pull requests, merged: the team's action and the lock, nothing of the template's.
    workflow.write_text(
        workflow.read_text(encoding="utf-8").replace(
            "1" * 40 + " # v4.0.0", "2" * 40 + " # v4.1.0"
        ),
        encoding="utf-8",
    )
    (project / "uv.lock").write_text("# the team's lock\nversion = 2\n", encoding="utf-8")
    commit(project, "Bump actions/cache and the lock (Dependabot)")
    pin = re.search(r"actions/checkout@([0-9a-f]{40}) # (v[\d.]+)", text)
    assert pin is not None
    for relative in (
        "template/{% if ci == 'github' %}.github{% endif %}/workflows/ci.yml.jinja",
        "template/pyproject.toml.jinja",
    ):
        template.edit(
            relative,
            lambda source: source.replace(pin.group(1), "3" * 40)
            .replace(f"# {pin.group(2)}", "# v7.9.9")
            .replace('"joblib>=1.4"', '"joblib>=1.5"'),
        )
    template.release("1.1.0")

    update(project)

    assert conflict_check(project).returncode == 0
    merged = workflow.read_text(encoding="utf-8")
    assert "actions/cache@" + "2" * 40 + " # v4.1.0" in merged  # the bot's bump of the team's
    assert merged.count("actions/checkout@" + "3" * 40 + " # v7.9.9") >= 2  # the release's
    assert pin.group(1) not in merged
    assert '"joblib>=1.5"' in (project / "pyproject.toml").read_text(encoding="utf-8")
    assert (project / "uv.lock").read_text(encoding="utf-8").endswith("version = 2\n")


@pytest.mark.slow
def test_changing_an_answer_at_the_same_version_changes_only_its_files(
    template: TemplateRepo, tmp_path: Path
) -> None:
    project = generate(template, tmp_path / "project")

    update(project, vcs_ref=copier.VcsRef.CURRENT, data={"license": "Apache-2.0"})

    assert changed_files(project) == {
        ".copier-answers.yml",
        "Dockerfile",
        "LICENSE",
        "pyproject.toml",
    }
    assert (project / "LICENSE").read_text(encoding="utf-8").lstrip().startswith("Apache License")
    assert recorded(project)["license"] == "Apache-2.0"


@pytest.mark.slow
def test_a_renamed_question_keeps_its_old_answer(template: TemplateRepo, tmp_path: Path) -> None:
    project = generate(template, tmp_path / "project", {"description": "Forecasts churn."})
    # The next release renames `description` to `summary`, defaulting to the old answer: no migration.
    copier_yml = (template.path / "copier.yml").read_text(encoding="utf-8")
    old_block = copier_yml[
        copier_yml.index("\ndescription:\n") : copier_yml.index("\nauthor_name:\n")
    ]
    new_block = (
        "\nsummary:\n  type: str\n  help: One line that says what the project does\n"
        "  default: \"{{ description | default('A machine-learning project.') }}\"\n"
    )
    (template.path / "copier.yml").write_text(copier_yml.replace(old_block, new_block), "utf-8")
    for name in files_of(template.path / "template"):
        if name.endswith(".jinja"):
            template.edit(
                f"template/{name}", lambda text: text.replace("{{ description", "{{ summary")
            )
    template.release("1.1.0")

    update(project)

    assert recorded(project)["summary"] == "Forecasts churn."
    assert "Forecasts churn." in (project / "README.md").read_text(encoding="utf-8")


def test_a_dirty_work_tree_is_refused_and_left_alone(
    template: TemplateRepo, tmp_path: Path
) -> None:
    project = generate(template, tmp_path / "project")
    template.make_a_release_with_typical_changes()
    (project / "README.md").write_text("work in progress\n", encoding="utf-8")

    with pytest.raises(UserMessageError, match="dirty"):
        update(project)

    assert (project / "README.md").read_text(encoding="utf-8") == "work in progress\n"
    assert changed_files(project) == {"README.md"}
    assert recorded(project)["_commit"] == "1.0.0"


@pytest.mark.slow
def test_updating_to_the_same_version_changes_nothing(
    template: TemplateRepo, tmp_path: Path
) -> None:
    project = generate(template, tmp_path / "project")

    update(project)

    assert changed_files(project) == set()


@pytest.mark.slow  # as tests/test_update_matrix.py does from each release, with every answer changed
@pytest.mark.parametrize(
    "answers", COVERING_SET, ids=lambda answers: "-".join(map(str, answers.values()))
)
def test_every_covered_answer_set_updates_from_the_previous_version(
    template: TemplateRepo, tmp_path: Path, answers: dict[str, Any]
) -> None:
    project = generate(template, tmp_path / "project", answers)
    template.make_a_release_with_typical_changes()

    update(project)

    assert (project / NEW_FILE).is_file()
    if (project / ".github" / "workflows" / "template-update.yml").exists():
        assert conflict_check(project).returncode == 0
    assert run(["git", "ls-files", "--unmerged"], project).stdout == ""
    assert {key: recorded(project)[key] for key in answers} == answers


def test_a_relative_template_path_gets_one_line_from_make_update_template(tmp_path: Path) -> None:
    project = render(tmp_path / "project")
    answers = project / ".copier-answers.yml"
    text = answers.read_text(encoding="utf-8")
    answers.write_text(
        re.sub(r"(?m)^_src_path: .*$", "_src_path: ./copier-ml-template", text), "utf-8"
    )
    git_init(project)

    result = run(["python3", "scripts/update_template.py"], project, check=False)

    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "_src_path ./copier-ml-template is relative" in result.stderr
    assert run(["git", "status", "--porcelain"], project).stdout == ""


@pytest.mark.slow
def test_adopting_the_template_in_an_existing_repository(
    template: TemplateRepo, tmp_path: Path
) -> None:
    """docs/adopting.md's procedure on a repository with a package of the same name (its own data.py,
    features.py), tests, requirements.txt, README and .gitignore: no file of the team's is written,
    the template's own versions are shown apart, and later updates keep what the team excludes."""
    repo = tmp_path / "existing"
    team = {
        "README.md": "# Fraud scoring\n\nOur own README.\n",
        ".gitignore": "secrets/\n*.parquet\n.venv/\n",
        "requirements.txt": "pandas>=2.2\nscikit-learn>=1.6\n",
        "src/fraud/__init__.py": '"""Our fraud package."""\n',
        "src/fraud/data.py": "def load() -> None:\n    pass\n",
        "src/fraud/features.py": "def build() -> None:\n    pass\n",
        "tests/test_features.py": "def test_build() -> None:\n    pass\n",
        "legacy/score.py": "print('legacy')\n",
    }
    for name, text in team.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text, encoding="utf-8")
    run(["git", "init", "--quiet", "--initial-branch=main"], repo)
    commit(repo, "Existing project")
    answers = {
        "project_name": "Fraud Scoring",
        "package_name": "fraud",
    }  # the worst case: same name

    copier.run_copy(
        str(template.path), repo, data=answers, defaults=True, skip_if_exists=["*"],
        vcs_ref="1.0.0", quiet=True, unsafe=False,
    )  # fmt: skip
    view = render(tmp_path / "template-view", answers, src=template.path, vcs_ref="1.0.0")

    # Nothing of the team's was written: git sees only new files.
    assert run(["git", "diff", "--name-only"], repo).stdout == ""
    assert {name: (repo / name).read_text(encoding="utf-8") for name in team} == team
    assert (repo / "src" / "fraud" / "cli.py").is_file()  # the template's files that were missing
    # The comparison of docs/adopting.md names the files to merge: the team's, where the template has
    # its own.
    compare = (
        'git ls-files | while read -r f; do [ -f "$VIEW/$f" ] && ! cmp -s "$f" "$VIEW/$f" '
        '&& echo "$f"; done'
    )
    listed = run(["bash", "-c", compare], repo, project_env() | {"VIEW": str(view)}).stdout.split()
    assert set(listed) == set(team) - {"requirements.txt", "legacy/score.py"}
    merge = 'grep -vxFf .gitignore "$VIEW/.gitignore" >> .gitignore'
    run(["bash", "-c", merge], repo, project_env() | {"VIEW": str(view)})
    ignored = (repo / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert {"secrets/", "*.parquet", ".venv/", ".env"} <= set(ignored)
    assert ignored.count(".venv/") == 1
    # The README stays the team's for good: [tool.update-template] exclude, read by the script that
    # `make update-template` and the weekly workflow run.
    pyproject = repo / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text(encoding="utf-8").replace(
            "[tool.update-template]\nexclude = []",
            '[tool.update-template]\nexclude = ["README.md"]',
        ),
        encoding="utf-8",
    )
    commit(repo, "Adopt the ML template")
    env = project_env() | {
        "COPIER": f"{sys.executable} -c pass"
    }  # records the command, changes nothing
    dry = run(["python3", "scripts/update_template.py"], repo, env)
    assert "--exclude README.md" in dry.stdout
    template.edit("template/README.md.jinja", lambda text: text + "\nA new template section.\n")
    template.make_a_release_with_typical_changes()
    update(repo, exclude=["README.md"])
    assert (repo / NEW_FILE).is_file()
    kept = {name: (repo / name).read_text(encoding="utf-8") for name in team}
    assert kept | {".gitignore": team[".gitignore"]} == team
    assert kept[".gitignore"].startswith(team[".gitignore"])
    assert conflict_check(repo).returncode == 0


@pytest.mark.slow
def test_make_update_template_brings_a_dependency_bump_with_a_fresh_lock(
    template: TemplateRepo, tmp_path: Path
) -> None:
    project = generate(template, tmp_path / "project")
    env = project_env()
    run(["make", "setup"], project, env)
    commit(project, "Set up, with uv.lock")
    template.edit(
        "template/pyproject.toml.jinja",
        lambda text: text.replace('  "joblib>=1.4",\n', '  "joblib>=1.4",\n  "tabulate>=0.9",\n'),
    )
    template.release("1.1.0")

    result = run(["make", "update-template"], project, env)

    assert "Template 1.0.0 -> 1.1.0" in result.stdout
    assert {"pyproject.toml", "uv.lock", ".copier-answers.yml"} <= changed_files(project)
    assert 'name = "tabulate"' in (project / "uv.lock").read_text(encoding="utf-8")
    run(["uv", "lock", "--check", "--offline"], project, env)  # what CI's --locked sync needs


@pytest.mark.slow
def test_the_printed_undo_restores_the_project_after_a_real_conflict(
    template: TemplateRepo, tmp_path: Path
) -> None:
    """The undo that update-template prints works from the state a conflict leaves (unmerged paths,
    markers, new files), run as printed; and the script starts with python3 and git alone, before any
    environment exists (issue 25: `git checkout -- .` refused unmerged paths and restored nothing).
    """
    project = generate(template, tmp_path / "project")
    pyproject = project / "pyproject.toml"
    ours = pyproject.read_text(encoding="utf-8").replace("fail_under = 85", "fail_under = 80")
    pyproject.write_text(ours, encoding="utf-8")
    head = commit(project)
    template.edit(
        "template/pyproject.toml.jinja",
        lambda text: text.replace("fail_under = 85", "fail_under = 90"),
    )
    template.make_a_release_with_typical_changes("1.1.0")
    env = project_env() | {"COPIER": f"{sys.executable} -m copier"}  # this suite's Copier
    assert not (project / ".venv").exists()

    result = run(["python3", "scripts/update_template.py"], project, env, check=False)

    assert result.returncode == 1
    assert "pyproject.toml: unmerged" in result.stdout
    assert (project / NEW_FILE).is_file()
    undo = result.stderr.split("or undo the update: ", 1)[1].strip()
    run(["bash", "-c", undo], project, env)
    assert changed_files(project) == set()
    assert run(["git", "rev-parse", "HEAD"], project).stdout.strip() == head
    assert pyproject.read_text(encoding="utf-8") == ours
    assert recorded(project)["_commit"] == "1.0.0"


def test_make_update_template_refuses_a_dirty_tree_in_one_line(
    template: TemplateRepo, tmp_path: Path
) -> None:
    project = generate(template, tmp_path / "project")
    (project / "README.md").write_text("work in progress\n", encoding="utf-8")

    result = run(["python3", "scripts/update_template.py"], project, check=False)

    assert result.returncode == 1
    assert result.stderr == (
        "update-template: the work tree has changes: commit or stash them first (git status)\n"
    )
    assert (project / "README.md").read_text(encoding="utf-8") == "work in progress\n"


@pytest.mark.slow
def test_a_refused_answer_in_make_update_template_is_one_line_and_changes_nothing(
    template: TemplateRepo, tmp_path: Path
) -> None:
    project = generate(template, tmp_path / "project")
    env = project_env() | {
        "COPIER": f"{sys.executable} -m copier"
    }  # this suite's Copier, no download

    result = run(
        ["python3", "scripts/update_template.py", "package_name=churn"], project, env, check=False
    )

    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("update-template: copier update refused, nothing was changed: ")
    assert "package_name cannot change on update (my_ml_project to churn)" in result.stderr
    assert changed_files(project) == set()
