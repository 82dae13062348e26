"""The questions: every bad answer is refused with a message naming the problem, and nothing is written;
derived defaults are always valid."""

import html
import json
import keyword
import re
import sys
import tomllib
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from .helpers import DEFAULT_ANSWERS, TEMPLATE, refused_names, run

COPIER_YML = yaml.safe_load((TEMPLATE / "copier.yml").read_text(encoding="utf-8"))
QUESTIONS = {name: spec for name, spec in COPIER_YML.items() if not name.startswith("_")}

# (question, bad answer, words the message must contain)
BAD_ANSWERS: list[tuple[str, Any, str]] = [
    ("project_name", "", "empty"),
    ("project_name", "   ", "empty"),
    ("project_name", " Churn", "leading or trailing spaces"),
    ("project_name", "x" * 81, "too long"),
    ("project_name", 'Say "hi"', "quote"),
    ("project_name", "back\\slash", "backslash"),
    ("project_name", "two\nlines", "control, invisible"),
    ("project_name", "123 456", "ASCII letter"),
    ("project_name", "Ωμέγα", "ASCII letter"),
    ("project_slug", "", "empty"),
    ("project_slug", "My-Project", "not a valid slug"),
    ("project_slug", "my_project", "not a valid slug"),
    ("project_slug", "my--project", "not a valid slug"),
    ("project_slug", "-project", "not a valid slug"),
    ("project_slug", "my project", "not a valid slug"),
    ("project_slug", "../escape", "not a valid slug"),
    ("project_slug", "a/b", "not a valid slug"),
    ("project_slug", "proj\u00e9t", "not a valid slug"),
    ("package_name", "", "empty"),
    ("package_name", "class", "Python keyword"),
    ("package_name", "import", "Python keyword"),
    ("package_name", "json", "standard-library module"),
    ("package_name", "logging", "standard-library module"),
    ("package_name", "distutils", "standard-library module"),
    ("package_name", "pandas", "dependency"),
    ("package_name", "sklearn", "dependency"),
    ("package_name", "my-package", "not a valid package name"),
    ("package_name", "1package", "not a valid package name"),
    ("package_name", "MyPackage", "not a valid package name"),
    ("package_name", "my package", "not a valid package name"),
    ("package_name", "paquet_\u00e9", "not a valid package name"),
    ("package_name", "../pkg", "not a valid package name"),
    ("package_name", "a/b", "not a valid package name"),
    ("package_name", "_private", "underscore"),
    ("package_name", "double__under", "underscore"),
    ("description", "", "empty"),
    ("description", "  ", "empty"),
    ("description", "d" * 201, "too long"),
    ("description", "first line\nsecond line", "single line"),
    ("author_name", "", "empty"),
    ("author_name", "Ada ", "leading or trailing spaces"),
    ("author_name", "a" * 101, "too long"),
    ("author_name", "Ada <ada@example.com>", "angle bracket"),
    ("author_name", 'Ada "Countess"', "quote"),
    ("author_email", "", "not an e-mail address"),
    ("author_email", "ada", "not an e-mail address"),
    ("author_email", "ada@", "not an e-mail address"),
    ("author_email", "@example.com", "not an e-mail address"),
    ("author_email", "ada@example", "not an e-mail address"),
    ("author_email", "ada lovelace@example.com", "not an e-mail address"),
    ("author_email", "ada@@example.com", "not an e-mail address"),
    ("author_email", "ad\u00e1@example.com", "not an e-mail address"),
    ("python_version", "3.9", "Invalid choice"),
    ("python_version", "3.10", "Invalid choice"),
    ("python_version", "3.16", "Invalid choice"),
    ("license", "GPL-3.0", "Invalid choice"),
    ("task", "forecasting", "Invalid choice"),
    ("ml_framework", "tensorflow", "Invalid choice"),
    ("torch_index", "cu999", "Invalid choice"),
    ("experiment_tracking", "wandb", "Invalid choice"),
    ("ci", "gitlab", "Invalid choice"),
    # Computed values are not answers (issue 24): they reached config.py, pyproject.toml and CI as given.
    ("dataset", 'x"); import os; os.system("touch PWNED"); ("', "computed from the other answers"),
    ("supported_pythons", '["2.7"]', "computed from the other answers"),
    ("framework", '{"module": "os"}', "computed from the other answers"),
    ("tracker", '{"module": "os", "summary": "x"}', "computed from the other answers"),
    ("use_update_workflow", False, "computed from the other answers"),
]

# Hostile answers from a hostile pass (issue 14): trailing newlines (`$` matches before one), control,
# invisible and bidirectional characters, undecodable bytes (surrogates), names of the project's own
# dependencies, tools and modules. Each is refused naming the question typed, and nothing is written.
INVISIBLE = [
    "\u200b",
    "\u200d",
    "\u202e",
    "\u2066",
    "\ufeff",
    "\u2028",
    "\x85",
    "\x1b",
    "\x00",
    "\udcff",
    # Issue 24's: format characters and characters shown as nothing
    "\u00ad",
    "\u061c",
    "\U000e0041",
    "\u3164",
    "\u034f",
    "\u180e",
    "\u2800",
]
HOSTILE: list[tuple[str, Any, str]] = [
    *[("project_name", f"Ch{c}urn", "control, invisible or undecodable") for c in INVISIBLE],
    ("project_name", "Churn\n", "leading or trailing spaces"),
    ("project_name", "Churn\t", "leading or trailing spaces"),
    ("project_name", "\u3000Churn", "leading or trailing spaces"),
    *[
        ("description", f"Predicts{c} churn", "no control, invisible or undecodable")
        for c in INVISIBLE
    ],
    ("description", "Predicts churn.\n", "leading or trailing spaces"),
    ("description", " Predicts churn.", "leading or trailing spaces"),
    ("description", "\t", "empty"),
    *[("author_name", f"Ada{c} Lovelace", "control, invisible or undecodable") for c in INVISIBLE],
    ("author_name", "Ada\n", "leading or trailing spaces"),
    ("author_name", "Ada\\", "backslash"),
    ("author_name", "<script>", "angle bracket"),
    *[("author_email", f"ada{c}@example.com", "not an e-mail address") for c in INVISIBLE],
    ("author_email", "ada@example.com\n", "not an e-mail address"),
    ("author_email", "ada@example.com ", "not an e-mail address"),
    ("author_email", "ada@exa mple.com", "not an e-mail address"),
    ("author_email", "ada@example.c", "not an e-mail address"),
    ("author_email", "ada@ex_ample.com", "not an e-mail address"),
    ("author_email", "ada@example..com", "not an e-mail address"),
    ("author_email", "a" * 250 + "@example.com", "too long"),
    *[
        ("project_slug", name, "dependency or tool of the project")
        for name in [
            "numpy",
            "pytest",
            "black",
            "mlflow",
            "python",
            "uv",
            "pip",
            "scikit-learn",
            "pandas",
            "click",
            "make",
            "git",
            "torch",
            "optuna",
            "sqlalchemy",
            "pre-commit",
            "ruff",
            "mypy",
        ]
    ],
    *[
        ("project_slug", name, "command of the project's environment or of the shell")
        for name in [
            "activate",
            "detect-private-key",
            "check-yaml",
            "dotenv",
            "jupyter",
            "grep",
            "awk",
        ]
    ],
    ("project_slug", "churn\n", "not a valid slug"),
    ("project_slug", "churn\u200b", "not a valid slug"),
    ("project_slug", "CHURN", "not a valid slug"),
    ("project_slug", "churn-", "not a valid slug"),
    ("project_slug", "p" * 51, "too long"),
    *[
        ("package_name", name, "module of a dependency")
        for name in [
            "click",
            "conftest",
            "packaging",
            "coverage",
            "typing_extensions",
            "pre_commit",
            "sqlalchemy",
            "cloudpickle",
            "tests",
            "scripts",
            "src",
            "attr",
            "git",
            "google",
            "dateutil",
            "torch",
            "sympy",
            "networkx",
            "optuna",
            "psycopg",
            "yaml",
            "pydantic",
        ]
    ],
    *[
        ("package_name", name, "standard-library module")
        for name in ["sitecustomize", "usercustomize", "xxsubtype", "xxlimited", "test"]
    ],
    ("package_name", "mypyc", "module of a dependency"),
    ("package_name", "churn\n", "not a valid package name"),
    ("package_name", "churn\u200b", "not a valid package name"),
    ("package_name", "p" * 51, "too long"),
    *[
        (question, answer, "Invalid choice")
        for question, answers in {
            "python_version": ["3.10", "3.9", "3.16", "3", "3.12\n", ""],
            "license": ["GPL-3.0", "mit", ""],
            "task": ["ranking", "Classification"],
            "ml_framework": ["tensorflow", "sklearn"],
            "experiment_tracking": ["wandb", "MLflow"],
            "ci": ["GitHub", ""],
        }.items()
        for answer in answers
    ],
]

# Hostile but harmless: accepted, and every generated TOML, YAML, JSON and Python file still parses (a
# sample also passes `make check`: tests/test_generated_project.py).
ACCEPTED: list[dict[str, Any]] = [
    # Answers to different questions share a render (0.3 s each); a project name whose derived slug and
    # package matter renders alone.
    {
        "project_name": "Café ☕ Prédictions 🚀",
        "description": 'Predicts 🚀 churn with émojis, "quotes" and back\\slashes.',
        "author_name": "Zoë Ørsted-Ñúñez 🚀",
        "author_email": "o.brien+ml@sub.example.co.uk",
    },
    {
        "project_name": "O'Brien Analytics",
        "description": "Costs ${HOME} and `$(id)`; 100% & <b>bold</b> {{ x }} {% y %}",
        "author_name": "Ada O'Brien & Co.",
    },
    {
        "project_name": "Churn & <Retention> #1",
        "description": "''' \"\"\" triple quotes \"\"\" '''",
        "author_name": "李雷",
    },
    {"project_name": "{{ jinja }} {% raw %}", "description": "d" * 200},
    {"project_name": "$(rm -rf /) `id`"},
    {"project_name": "李雷 and Hanako"},
    {"project_name": "Click"},  # the slug steps aside from the dependency: click-ml
    {"project_name": "x" * 80},
    {"project_name": "Detection " * 7 + "Detections"},  # 80 characters: the slug is cut to 50
    {"project_slug": "a" * 50, "package_name": "a" * 50},
]


@pytest.mark.parametrize(
    ("question", "answer", "message"),
    [
        *BAD_ANSWERS,
        # The 121 hostile ones are for the whole suite; the quick loop has every question's bad answers.
        *(pytest.param(*case, marks=pytest.mark.slow) for case in HOSTILE),
    ],
    ids=[f"{question}-{index}" for index, (question, _, _) in enumerate(BAD_ANSWERS + HOSTILE)],
)
def test_a_bad_answer_is_refused_by_name_and_writes_nothing(
    tmp_path: Path, render_plain: Callable[..., Path], question: str, answer: Any, message: str
) -> None:
    dest = tmp_path / "project"

    with pytest.raises(ValueError, match=f"(question|choice for) '{question}'") as refused:
        render_plain(dest, {question: answer})

    assert message in str(refused.value)
    assert not dest.exists()


def test_every_free_text_question_has_a_validator_and_bad_answers() -> None:
    free_text = {
        name
        for name, spec in QUESTIONS.items()
        if spec.get("type") == "str" and "choices" not in spec and spec.get("when") is not False
    }
    assert free_text == {name for name in free_text if "validator" in QUESTIONS[name]}
    assert free_text <= {question for question, _, _ in BAD_ANSWERS}
    # The quick loop refuses a bad answer of every question that can refuse one.
    with_choices = {name for name, spec in QUESTIONS.items() if "choices" in spec}
    assert with_choices <= {question for question, _, _ in BAD_ANSWERS}
    # A computed value refuses any value but its own, from --data or an answers file.
    computed = {name for name, spec in QUESTIONS.items() if spec.get("when") is False}
    assert computed == {name for name in computed if "validator" in QUESTIONS[name]}
    assert computed <= {question for question, _, _ in BAD_ANSWERS}


def test_every_question_has_a_type_and_help() -> None:
    for name, spec in QUESTIONS.items():
        assert "type" in spec, name
        assert spec.get("when") is False or spec.get("help"), name


@pytest.mark.parametrize(
    ("project_name", "slug", "package"),
    [
        ("Churn Prediction", "churn-prediction", "churn_prediction"),
        ("123 Vision", "123-vision", "ml_123_vision"),
        ("Class", "class", "class_ml"),
        ("JSON", "json", "json_ml"),
        ("Pandas", "pandas-ml", "pandas_ml"),  # the slug steps aside from the dependency too
        ("  Détection de fraude!", None, None),  # refused: leading spaces
        ("Détection de fraude!", "d-tection-de-fraude", "d_tection_de_fraude"),
        (
            "Detection " * 7 + "Detections",  # 80 characters: cut at a hyphen, to 50 at most
            "detection-" * 4 + "detection",
            "detection_" * 4 + "detection",
        ),
    ],
)
def test_derived_names_are_valid_or_the_name_is_refused(
    tmp_path: Path,
    render_plain: Callable[..., Path],
    project_name: str,
    slug: str | None,
    package: str | None,
) -> None:
    answers = {"project_name": project_name}
    if slug is None or package is None:
        with pytest.raises(ValueError, match="project_name"):
            render_plain(tmp_path / "p", answers)
        return
    project = render_plain(tmp_path / "p", answers)

    answers = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert (answers["project_slug"], answers["package_name"]) == (slug, package)
    assert (project / "src" / package / "__init__.py").is_file()


def test_the_refused_names_cover_this_python() -> None:
    stdlib = {name for name in sys.stdlib_module_names if not name.startswith("_")}
    assert stdlib <= refused_names("STDLIB_MODULES")
    assert set(keyword.kwlist) == refused_names("PYTHON_KEYWORDS")


def test_every_format_character_is_refused() -> None:
    text = (TEMPLATE / "includes" / "names.jinja").read_text(encoding="utf-8")
    source = text.split("set UNSAFE_TEXT = '", 1)[1].split("'", 1)[0]
    unsafe = re.compile(source.encode("ascii").decode("unicode-escape"))
    formats = [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"]

    assert [f"U+{ord(c):04X}" for c in formats if not unsafe.search(c)] == []


def test_an_html_comment_in_the_description_hides_nothing(
    tmp_path: Path, render_plain: Callable[..., Path]
) -> None:
    project = render_plain(tmp_path / "p", {"description": "<!-- hides the README, or <details>"})

    readme = (project / "README.md").read_text(encoding="utf-8")
    assert readme.splitlines()[2] == "<p>&lt;!-- hides the README, or &lt;details&gt;</p>"
    run(["mdformat", "--check", "README.md"], project)


def test_the_defaults_are_the_canonical_answers() -> None:
    for name, value in DEFAULT_ANSWERS.items():
        default = QUESTIONS[name]["default"]
        if "{{" not in str(default):  # derived defaults are checked by rendering
            assert default == value, name


def test_the_hostile_table_is_large() -> None:
    assert len(BAD_ANSWERS) + len(HOSTILE) + sum(map(len, ACCEPTED)) >= 150


@pytest.mark.parametrize("answers", ACCEPTED, ids=[f"accepted-{i}" for i in range(len(ACCEPTED))])
def test_a_hostile_but_harmless_answer_renders_files_that_parse(
    tmp_path: Path, render_plain: Callable[..., Path], answers: dict[str, Any]
) -> None:
    project = render_plain(tmp_path / "p", answers)

    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    for question, answer in answers.items():
        assert recorded[question] == answer
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["description"] == recorded["description"]
    assert pyproject["project"]["authors"][0]["name"] == recorded["author_name"]
    for path in project.rglob("*"):
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        if path.suffix in {".yml", ".yaml"}:
            yaml.safe_load(text)
        elif path.suffix == ".py":
            compile(text, str(path), "exec")
        elif path.suffix == ".ipynb":
            json.loads(text)
    dockerfile = (project / "Dockerfile").read_text(encoding="utf-8")
    label = re.search(r'image\.description="(.*)" \\$', dockerfile, flags=re.MULTILINE)
    assert label is not None
    assert re.sub(r"\\(.)", r"\1", label.group(1)) == recorded["description"]
    # The Markdown is formatted as the project's mdformat hook wants it, and shows the name and the
    # description as typed: plain, or an HTML element that Markdown does not interpret.
    run(["mdformat", "--check", "README.md", "CONTRIBUTING.md"], project)
    title, _, summary = (project / "README.md").read_text(encoding="utf-8").split("\n")[:3]
    assert html.unescape(re.sub(r"^# |</?h1>", "", title)) == recorded["project_name"]
    assert html.unescape(re.sub(r"</?p>", "", summary)) == recorded["description"]
