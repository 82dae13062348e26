"""Every combination of answers renders a sound project (render-level checks, no project commands)."""

import itertools
import json
import tomllib
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from .helpers import (
    COVERING_SET,
    FRAMEWORKS,
    TRACKERS,
    assert_answers_reached_output,
    distinct_files,
    effective,
    files_of,
    run,
)
from .test_questions import QUESTIONS

# Every value of every question that changes the output's shape. Free-text answers are covered by the
# validator tables; here they keep their defaults.
VALUES: dict[str, list[Any]] = {
    "python_version": ["3.11", "3.12", "3.13", "3.14", "3.15"],
    "license": ["MIT", "Apache-2.0", "BSD-3-Clause", "Proprietary"],
    "task": ["classification", "regression"],
    "ml_framework": list(FRAMEWORKS),
    "experiment_tracking": list(TRACKERS),
    "ci": ["github", "none"],
    "use_docker": [True, False],
    "template_updates": [True, False],
}
# `task` only sets the demo table and the config's defaults, `python_version` a handful of version
# fields: rather than multiplying the product by 10, they run along it (periods 10 and 5, so that they
# also meet each other), and the test below checks that each still meets every value of every question.
ALTERNATING = ("task", "python_version")


def all_answer_sets() -> list[dict[str, Any]]:
    sets = []
    crossed = {name: values for name, values in VALUES.items() if name not in ALTERNATING}
    for position, combination in enumerate(itertools.product(*crossed.values())):
        answers = dict(zip(crossed, combination, strict=True))
        answers["task"] = VALUES["task"][(position // 5) % 2]
        answers["python_version"] = VALUES["python_version"][position % 5]
        if answers["ci"] == "none":
            if not answers["template_updates"]:
                continue  # not asked without GitHub CI: one set, not two
            del answers["template_updates"]
        sets.append(answers)
    return sets


ALL_SETS = all_answer_sets()


def test_the_matrix_knows_every_choice_of_every_question() -> None:
    for name, values in VALUES.items():
        spec = QUESTIONS[name]
        choices = spec.get("choices", [True, False] if spec["type"] == "bool" else None)
        if isinstance(choices, dict):
            choices = list(choices.values())
        assert sorted(map(str, values)) == sorted(map(str, choices)), name
    assert len(ALL_SETS) == 4 * 2 * 2 * (2 * 2 + 2)
    # Each alternating question meets every value of every other question, and every stack.
    for alternating, name in itertools.product(ALTERNATING, VALUES):
        if name == alternating:
            continue
        for value, other in itertools.product(VALUES[name], VALUES[alternating]):
            assert any(
                answers.get(name, value) == value and answers[alternating] == other
                for answers in ALL_SETS
                if name in answers
            ), (name, value, alternating, other)
    stacks = {(s["task"], s["ml_framework"], s["experiment_tracking"]) for s in ALL_SETS}
    assert stacks == set(STACKS)


STACKS = list(
    itertools.product(VALUES["task"], VALUES["ml_framework"], VALUES["experiment_tracking"])
)


@cache
def _reference(
    render_plain: Callable[..., Path], task: str, framework: str, tracking: str, base: Path
) -> Path:
    """One project per task x framework x tracking: the only answers its Python depends on."""
    answers = {"task": task, "ml_framework": framework, "experiment_tracking": tracking}
    return render_plain(base / f"ref-{task}-{framework}-{tracking}", answers)


def python_files(project: Path) -> dict[str, bytes]:
    return {
        name: (project / name).read_bytes()
        for name in files_of(project)
        if name.endswith((".py", ".ipynb"))
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    "answers", ALL_SETS, ids=["-".join(map(str, s.values())) for s in ALL_SETS]
)
def test_every_answer_combination_renders_a_sound_project(
    render_plain: Callable[..., Path],
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    answers: dict[str, Any],
) -> None:
    project = render_plain(tmp_path / "p", answers)
    full = effective(answers)

    # The answers reached the output, and the file set is what they ask for.
    assert_answers_reached_output(project, answers)
    files = files_of(project)
    assert not [name for name in files if name.endswith(".jinja")]
    github = full["ci"] == "github"
    assert (".github/dependabot.yml" in files) == github
    assert (".dockerignore" in files) == full["use_docker"]
    # Nothing left unrendered; every structured file parses.
    for name in files:
        text = (project / name).read_text(encoding="utf-8").replace("${{", "")
        assert not any(marker in text for marker in ("{{", "{%", "{#")), name
        if name.endswith(".toml"):
            tomllib.loads(text)
        elif name.endswith((".yml", ".yaml")):
            yaml.safe_load(text)
        elif name.endswith((".json", ".ipynb")):
            json.loads(text)
    # Formatted as rendered: the Python is byte for byte the checked reference of its stack.
    reference = _reference(
        render_plain,
        full["task"],
        full["ml_framework"],
        full["experiment_tracking"],
        tmp_path_factory.getbasetemp(),
    )
    expected = python_files(reference)  # the stack's, with Docker: its server's health check
    if not full["use_docker"]:
        expected = {name: text for name, text in expected.items() if not name.startswith("docker/")}
    assert python_files(project) == expected


@pytest.mark.slow  # the quick loop renders the defaults twice (tests/test_render.py)
@pytest.mark.parametrize("answers", COVERING_SET, ids=[f"set{i}" for i in range(len(COVERING_SET))])
def test_each_covering_answer_set_renders_the_same_bytes_twice(
    render_plain: Callable[..., Path], tmp_path: Path, answers: dict[str, Any]
) -> None:
    first = render_plain(tmp_path / "first", answers)
    second = render_plain(tmp_path / "second", answers)

    assert files_of(first) == files_of(second)
    for name in files_of(first):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


# The longest names allowed: black breaks the lines of the imports and calls that hold them differently.
LONGEST_NAMES = {"project_name": "A" * 80, "project_slug": "s" * 50, "package_name": "p" * 50}


@pytest.mark.parametrize("names", ["default", "longest"])
def test_the_python_of_each_stack_is_formatted_and_lint_free_with_any_name_length(
    render_plain: Callable[..., Path],
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    names: str,
) -> None:
    """Each stack, with the default names and with the longest allowed, as black and ruff check it
    under the project's own settings. One run of each over the 8 projects (black takes half a second
    to start): ruff reads each project's pyproject.toml; black gets the settings they share, and each
    distinct file once."""
    projects = []
    for task, framework, tracking in STACKS:
        if names == "default":
            base = tmp_path_factory.getbasetemp()
            projects.append(_reference(render_plain, task, framework, tracking, base))
            continue
        answers = {
            **LONGEST_NAMES,
            "task": task,
            "ml_framework": framework,
            "experiment_tracking": tracking,
        }
        longest = render_plain(tmp_path / f"longest-{task}-{framework}-{tracking}", answers)
        assert_answers_reached_output(longest, answers)
        projects.append(longest)
    settings = {
        json.dumps(tomllib.loads((project / "pyproject.toml").read_text("utf-8"))["tool"]["black"])
        for project in projects
    }
    assert len(settings) == 1, settings

    config = str(projects[0] / "pyproject.toml")
    python = distinct_files(projects, lambda name: name.endswith((".py", ".ipynb")))
    run(["black", "--check", "--quiet", "--config", config, *map(str, python)], tmp_path)
    run(["ruff", "check", "--quiet", "--no-cache", *map(str, projects)], tmp_path)
    # The Markdown and the spelling, as the project's hooks check them (settings: .mdformat.toml).
    markdown = distinct_files(projects, lambda name: name.endswith(".md"))
    run(["mdformat", "--check", *map(str, markdown)], tmp_path)
    run(["codespell", *map(str, distinct_files(projects, lambda name: True))], tmp_path)
