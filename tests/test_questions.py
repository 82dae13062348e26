"""The questions: every bad answer is refused with a message naming the problem, and nothing is written;
derived defaults are always valid."""

import keyword
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .helpers import DEFAULT_ANSWERS, TEMPLATE, render

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
    ("project_name", "two\nlines", "control character"),
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
    ("project_slug", "p" * 51, "too long"),
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
    ("package_name", "p" * 51, "too long"),
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
    ("python_version", "3.15", "Invalid choice"),
    ("license", "GPL-3.0", "Invalid choice"),
    ("ml_framework", "tensorflow", "Invalid choice"),
    ("experiment_tracking", "wandb", "Invalid choice"),
    ("ci", "gitlab", "Invalid choice"),
]


@pytest.mark.parametrize(
    ("question", "answer", "message"),
    BAD_ANSWERS,
    ids=[f"{question}-{index}" for index, (question, _, _) in enumerate(BAD_ANSWERS)],
)
def test_a_bad_answer_is_refused_by_name_and_writes_nothing(
    tmp_path: Path, question: str, answer: Any, message: str
) -> None:
    dest = tmp_path / "project"

    with pytest.raises(ValueError, match=f"(question|choice for) '{question}'") as refused:
        render(dest, {question: answer})

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
        ("Pandas", "pandas", "pandas_ml"),
        ("  Détection de fraude!", None, None),  # refused: leading spaces
        ("Détection de fraude!", "d-tection-de-fraude", "d_tection_de_fraude"),
    ],
)
def test_derived_names_are_valid_or_the_name_is_refused(
    tmp_path: Path, project_name: str, slug: str | None, package: str | None
) -> None:
    if slug is None or package is None:
        with pytest.raises(ValueError, match="project_name"):
            render(tmp_path / "p", {"project_name": project_name})
        return
    project = render(tmp_path / "p", {"project_name": project_name})

    answers = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert (answers["project_slug"], answers["package_name"]) == (slug, package)
    assert (project / "src" / package / "__init__.py").is_file()


def _jinja_list(name: str) -> set[str]:
    text = (TEMPLATE / "includes" / "names.jinja").read_text(encoding="utf-8")
    block = text.split(f"set {name} = [", 1)[1].split("]", 1)[0]
    return set(re.findall(r'"([^"]+)"', block))


def test_the_refused_names_cover_this_python() -> None:
    stdlib = {name for name in sys.stdlib_module_names if not name.startswith("_")}
    assert stdlib <= _jinja_list("STDLIB_MODULES")
    assert set(keyword.kwlist) == _jinja_list("PYTHON_KEYWORDS")


def test_the_defaults_are_the_canonical_answers() -> None:
    for name, value in DEFAULT_ANSWERS.items():
        default = QUESTIONS[name]["default"]
        if "{{" not in str(default):  # derived defaults are checked by rendering
            assert default == value, name
