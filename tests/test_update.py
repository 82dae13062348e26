"""`copier update` keeps a team's edits.

Each test builds a throwaway template repository with tagged versions (1.0.0 is this tree; 1.1.0 is this
tree with the kind of change a template release makes), generates a project from 1.0.0, commits, edits it
as a team would, updates, and checks the result. All through Copier's API, never trusting the template.
"""

import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import copier
import pytest
import yaml
from copier.errors import UserMessageError

from .helpers import (
    COVERING_SET,
    TEMPLATE,
    copy_template_tree,
    files_of,
    git_identity,
    git_init,
    render,
    run,
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


def commit(project: Path, message: str = "Team edits") -> None:
    env = git_identity()
    run(["git", "add", "--all"], project, env)
    run(["git", "commit", "--quiet", "--no-verify", "-m", message], project, env)


def update(project: Path, vcs_ref: str | copier.VcsRef | None = None, **options: Any) -> None:
    copier.run_update(
        project,
        defaults=True,
        overwrite=True,
        vcs_ref=vcs_ref,
        conflict="inline",
        quiet=True,
        unsafe=False,
        **options,
    )


def changed_files(project: Path) -> set[str]:
    """Paths git reports as changed, added, removed or unmerged since the last commit."""
    lines = run(["git", "status", "--porcelain", "--untracked-files=all"], project).stdout
    return {line[3:] for line in lines.splitlines()}


def conflict_check(project: Path) -> subprocess.CompletedProcess[str]:
    """Run the generated update workflow's own conflict check in `project`."""
    workflow = yaml.safe_load(
        (project / ".github" / "workflows" / "template-update.yml").read_text(encoding="utf-8")
    )
    (step,) = [
        s for s in workflow["jobs"]["update"]["steps"] if s.get("name", "").startswith("Fail")
    ]
    return run(["bash", "-eo", "pipefail", "-c", step["run"]], project, check=False)


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
    assert "conflict markers" in check.stdout
    assert "pyproject.toml" in check.stdout


def test_the_pre_commit_hooks_refuse_conflict_leftovers(
    template: TemplateRepo, tmp_path: Path
) -> None:
    project = generate(template, tmp_path / "project")
    (project / "Makefile.rej").write_text("@@ rejected hunk\n", encoding="utf-8")
    run(["git", "add", "--all"], project)
    config = yaml.safe_load((project / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    hooks = {hook["id"] for repo in config["repos"] for hook in repo["hooks"]}
    assert {"no-rej-files", "check-merge-conflict"} <= hooks

    # (The other hooks run tools from the project's environment; this one needs none.)
    rej = run(["pre-commit", "run", "no-rej-files", "--all-files"], project, check=False)
    assert rej.returncode != 0
    assert "Makefile.rej" in rej.stdout


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


def test_updating_to_the_same_version_changes_nothing(
    template: TemplateRepo, tmp_path: Path
) -> None:
    project = generate(template, tmp_path / "project")

    update(project)

    assert changed_files(project) == set()


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


def release_tags() -> list[str]:
    """This repository's release tags (PEP 440), oldest first."""
    listed = run(["git", "tag", "--list"], TEMPLATE, check=False).stdout.split()
    tags = [tag for tag in listed if re.fullmatch(r"v?\d+(\.\d+)*", tag)]
    return sorted(tags, key=lambda tag: [int(part) for part in tag.lstrip("v").split(".")])


def test_a_project_from_the_last_release_updates_to_this_tree(tmp_path: Path) -> None:
    tags = release_tags()
    if not tags:
        pytest.skip("this repository has no release tags yet")
    project = render(tmp_path / "project", vcs_ref=tags[-1])
    git_init(project)

    update(project, vcs_ref="HEAD")

    assert run(["git", "ls-files", "--unmerged"], project).stdout == ""
    markers = run(["git", "grep", "-lE", "^(<{7}|>{7})( |$)"], project, check=False).stdout
    assert markers == ""
