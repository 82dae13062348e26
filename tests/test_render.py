"""Fast tier: render the template and check the files themselves, without running the project."""

import filecmp
import json
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from .helpers import (
    COVERING_SET,
    DEFAULT_ANSWERS,
    PYTHON_VERSIONS,
    TEMPLATE,
    distinct_files,
    files_of,
    free_port,
    project_env,
    render,
    run,
)

ANSWERS = ".copier-answers.yml"
JINJA_MARKERS = ("{{", "{%", "{#")  # openers only: Python code closes nested dicts with }}


def test_the_default_project_has_the_expected_layout(default_project: Path) -> None:
    files = files_of(default_project)

    package = "src/my_ml_project"
    expected = {
        ".copier-answers.yml",
        ".editorconfig",
        ".gitignore",
        ".pre-commit-config.yaml",
        ".python-version",
        "LICENSE",
        "Makefile",
        "README.md",
        "pyproject.toml",
        "configs/train.yaml",
        *(f"{folder}/.gitkeep" for folder in ("data/raw", "data/interim", "data/processed")),
        "models/.gitkeep",
        "reports/.gitkeep",
        "reports/figures/.gitkeep",
        f"{package}/py.typed",
        f"{package}/__init__.py",
        f"{package}/cli.py",
        f"{package}/config.py",
        f"{package}/data.py",
        f"{package}/features.py",
        f"{package}/models.py",
        f"{package}/sklearn_model.py",
        f"{package}/train.py",
        f"{package}/storage.py",
        f"{package}/evaluate.py",
        f"{package}/predict.py",
        f"{package}/pipeline.py",
        f"{package}/registry.py",
        f"{package}/records.py",
        f"{package}/tracking.py",
        f"{package}/mlflow_tracking.py",
        "tests/conftest.py",
        "tests/projects.py",
        "tests/test_cli.py",
        "tests/test_data.py",
        "tests/test_lifecycle.py",
        "tests/test_tracking.py",
        "tests/test_mlflow_tracking.py",
        "tests/test_registry.py",
    }
    assert expected <= files
    assert not [name for name in files if name.endswith(".jinja")]


def test_nothing_rendered_keeps_jinja_syntax(default_project: Path) -> None:
    leftovers = []
    for name in files_of(default_project):
        text = (default_project / name).read_text(encoding="utf-8", errors="replace")
        # GitHub expressions ${{ ... }} are meant to stay; anything else is a rendering slip.
        text = text.replace("${{", "")
        leftovers += [f"{name}: {marker}" for marker in JINJA_MARKERS if marker in text]
    assert leftovers == []


def test_every_toml_yaml_and_json_file_parses(default_project: Path) -> None:
    parsed = 0
    for name in sorted(files_of(default_project)):
        path = default_project / name
        if path.suffix == ".toml":
            tomllib.loads(path.read_text(encoding="utf-8"))
        elif path.suffix in {".yml", ".yaml"}:
            yaml.safe_load(path.read_text(encoding="utf-8"))
        elif path.suffix in {".json", ".ipynb"}:
            json.loads(path.read_text(encoding="utf-8"))
        else:
            continue
        parsed += 1
    assert parsed >= 4


def test_rendering_twice_gives_the_same_bytes(default_project: Path, tmp_path: Path) -> None:
    again = render(tmp_path / "my-ml-project")

    names = sorted(files_of(default_project))
    assert names == sorted(files_of(again))
    _, mismatch, errors = filecmp.cmpfiles(default_project, again, names, shallow=False)
    if run(["git", "status", "--porcelain"], TEMPLATE).stdout and mismatch == [ANSWERS]:
        # A dirty working tree is copied through a throwaway commit, recorded as `_commit`.
        strip = re.compile(r"^_commit: .*$", flags=re.MULTILINE)
        texts = {strip.sub("", (p / ANSWERS).read_text("utf-8")) for p in (default_project, again)}
        assert len(texts) == 1
        mismatch = []
    assert (mismatch, errors) == ([], [])


def test_the_answers_file_records_every_asked_question(default_project: Path) -> None:
    answers = yaml.safe_load((default_project / ".copier-answers.yml").read_text(encoding="utf-8"))

    assert {key: answers[key] for key in DEFAULT_ANSWERS} == DEFAULT_ANSWERS
    assert answers["_src_path"]


def test_the_rendered_python_is_formatted_and_lint_free(default_project: Path) -> None:
    # With the same tool series the project pins, and its own configuration.
    run(["black", "--check", "--quiet", "."], default_project)
    run(["ruff", "check", "--quiet", "--no-cache", "."], default_project)


@pytest.mark.parametrize("version", PYTHON_VERSIONS)
def test_every_python_setting_follows_the_version_answer(
    tmp_path: Path, render_plain: Callable[..., Path], version: str
) -> None:
    project = render_plain(tmp_path / "p", {"python_version": version})
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    supported = PYTHON_VERSIONS[PYTHON_VERSIONS.index(version) :]

    assert pyproject["project"]["requires-python"] == f">={version}"
    assert pyproject["tool"]["mypy"]["python_version"] == version
    # Black and ruff read their targets from requires-python: the version is stated once for them.
    assert "target-version" not in pyproject["tool"]["ruff"]
    assert "target-version" not in pyproject["tool"]["black"]
    cli = str(next((project / "src").glob("*/cli.py")))
    ruff = run(["ruff", "check", "--show-settings", cli], project).stdout
    assert f"linter.unresolved_target_version = {version}\n" in ruff
    black = run(["black", "--check", "--verbose", cli], project).stderr
    assert f"target_version: {['py' + v.replace('.', '') for v in supported]}" in black
    classifiers = [
        c.rsplit(" :: ", 1)[1]
        for c in pyproject["project"]["classifiers"]
        if c.startswith("Programming Language :: Python :: 3.")
    ]
    assert classifiers == list(supported)
    assert (project / ".python-version").read_text(encoding="utf-8") == f"{version}\n"


def test_the_newest_python_renders_formatted_and_lint_free(
    tmp_path: Path, render_plain: Callable[..., Path]
) -> None:
    # No CPython 3.14 or 3.15 is installed on the machines this suite runs on, so a 3.15 project cannot
    # be set up here (its requires-python is >=3.15): it is checked statically, with the targets Black
    # and ruff infer from requires-python (py315), and CI's matrix and the Docker base image name that
    # version. Its run happens in the generated project's own CI on GitHub.
    newest = PYTHON_VERSIONS[-1]
    project = render_plain(tmp_path / "p", {"python_version": newest})
    run(["black", "--check", "--quiet", "."], project)
    run(["ruff", "check", "--quiet", "--no-cache", "."], project)
    workflow = (project / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8")
    assert f'python-version: ["{newest}"]' in workflow
    dockerfile = (project / "Dockerfile").read_text(encoding="utf-8")
    assert f"FROM python:{newest}-slim AS builder" in dockerfile


@pytest.mark.parametrize("license_id", ["MIT", "Apache-2.0", "BSD-3-Clause", "Proprietary"])
def test_the_licence_follows_the_answer(
    tmp_path: Path, render_plain: Callable[..., Path], license_id: str
) -> None:
    project = render_plain(tmp_path / "p", {"license": license_id, "author_name": "Ada Lovelace"})
    text = (project / "LICENSE").read_text(encoding="utf-8")
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))

    first_line = {
        "MIT": "MIT License",
        "Apache-2.0": "Apache License",
        "BSD-3-Clause": "BSD 3-Clause License",
        "Proprietary": "Copyright (c) Ada Lovelace. All rights reserved.",
    }[license_id]
    assert text.lstrip().startswith(first_line)
    assert text.endswith("\n")
    assert not text.endswith("\n\n")
    expected_spdx = "LicenseRef-Proprietary" if license_id == "Proprietary" else license_id
    assert pyproject["project"]["license"] == expected_spdx


def test_make_help_lists_every_target_with_a_description(default_project: Path) -> None:
    makefile = (default_project / "Makefile").read_text(encoding="utf-8")
    targets = re.findall(r"^([a-z][a-z-]*):", makefile, flags=re.MULTILINE)
    undocumented = [t for t in targets if not re.search(rf"^{t}:.*## \S", makefile, re.MULTILINE)]
    assert undocumented == []

    listed = re.sub(r"\x1b\[[0-9;]*m", "", run(["make", "help"], default_project).stdout)
    assert {line.split()[0] for line in listed.splitlines() if line.strip()} == set(targets)
    assert {"setup", "doctor", "format", "lint", "typecheck", "test", "check"} <= set(targets)
    assert {"data", "train", "evaluate", "predict", "compare", "promote"} <= set(targets)
    # Each target is .PHONY on its own line beside its rule: a team's target is a line of its own too.
    phony = re.findall(r"^\.PHONY: (.+)$", makefile, flags=re.MULTILINE)
    assert phony == targets


def test_make_leaves_env_to_the_commands(tmp_path: Path, render_plain: Callable[..., Path]) -> None:
    """.env is the CLI's to read (tests in the project show how it reads values); make neither
    includes it (which mangled `$` and quotes) nor lets it change `make help`."""
    project = render_plain(tmp_path / "p")
    clean = run(["make", "help"], project).stdout
    (project / ".env").write_text("PASSWORD='pa$word # x'\nSPACES=a b\n", encoding="utf-8")

    assert run(["make", "help"], project).stdout == clean
    assert "Makefile:" not in clean


# (target, variables, the arguments the CLI must receive): what users type, and what an attacker would
@pytest.mark.parametrize(
    ("target", "variables", "arguments"),
    [
        (
            "runs",
            {"FILTER": "x' ; touch PWNED ; echo '"},
            ["runs", "--filter", "x' ; touch PWNED ; echo '"],
        ),
        (
            "runs",
            {"FILTER": "params.seed > 5", "SORT": "params.seed:desc"},
            ["runs", "--filter", "params.seed > 5", "--sort", "params.seed:desc"],
        ),
        (
            "train",
            {"SET": "seed=1;touch${IFS}PWNED data.test_size=0.3 *"},
            [
                "train",
                "--set",
                "seed=1;touch${IFS}PWNED",
                "--set",
                "data.test_size=0.3",
                "--set",
                "*",
            ],
        ),
        ("train", {}, ["train"]),
        (
            "predict",
            {"INPUT": "data/raw/new rows $(shell touch PWNED).csv"},
            [
                "predict",
                "--input",
                "data/raw/new rows $(shell touch PWNED).csv",
                "--output",
                "data/processed/predictions.csv",
            ],
        ),
        (
            "sweep",
            {"STUDY": "a study`touch PWNED`", "TRIALS": "3"},
            ["sweep", "--trials", "3", "--workers", "1", "--study", "a study`touch PWNED`"],
        ),
        (
            "serve",
            {"PORT": "8001;touch PWNED"},
            ["serve", "--port", "8001;touch PWNED", "--workers", "1"],
        ),
        ("prune", {"KEEP": "2"}, ["runs", "prune", "--keep", "2"]),
        ("promote", {"RUN": "3f2a;touch PWNED"}, ["promote", "3f2a;touch PWNED"]),
        ("compare", {"RUNS": "3f2a 77e0 *"}, ["compare", "3f2a", "77e0", "*"]),
    ],
)
def test_make_variables_reach_the_cli_as_data_never_as_shell_code(
    default_project: Path, target: str, variables: dict[str, str], arguments: list[str]
) -> None:
    settings = [f"{name}={value}" for name, value in variables.items()]
    show_arguments = "CLI=printf '<%s>\\n'"  # in place of the CLI: one line per argument it gets

    result = run(
        ["make", "--no-print-directory", target, show_arguments, *settings], default_project
    )

    expected = ["--config", "configs/train.yaml", *arguments]
    assert result.stdout.splitlines() == [f"<{argument}>" for argument in expected]
    assert not (default_project / "PWNED").exists()


def test_every_question_is_documented_with_its_choices() -> None:
    questions = yaml.safe_load((TEMPLATE / "copier.yml").read_text(encoding="utf-8"))
    docs = (TEMPLATE / "docs" / "questions.md").read_text(encoding="utf-8")
    for name, spec in questions.items():
        if name.startswith("_") or not isinstance(spec, dict) or spec.get("when") is False:
            continue
        assert f"### `{name}`" in docs, f"question {name} is not documented in docs/questions.md"
        section = docs.split(f"### `{name}`", 1)[1].split("\n### ", 1)[0]
        choices = spec.get("choices", {})
        for value in choices.values() if isinstance(choices, dict) else choices:
            assert f"`{value}`" in section, f"choice {value} of {name} is not documented"


def test_the_docs_site_builds_strictly(tmp_path: Path) -> None:
    run(["mkdocs", "build", "--strict", "--quiet", "--site-dir", str(tmp_path / "site")], TEMPLATE)


def test_a_uv_hidden_by_a_pyenv_shim_is_diagnosed_and_make_still_finds_it(
    tmp_path: Path, render_plain: Callable[..., Path]
) -> None:
    """uv installed with pip into one pyenv Python is reached through a shim that fails in a folder
    whose .python-version names another: `make doctor` says so, and make uses that Python's uv."""
    pyenv = shutil.which("pyenv")
    owners = run(["pyenv", "whence", "uv"], tmp_path, check=False).stdout.split() if pyenv else []
    if not pyenv or not owners:
        pytest.skip(
            "needs pyenv with uv installed in one of its Pythons (as on this suite's machines)"
        )
    root = run(["pyenv", "root"], tmp_path).stdout.strip()
    if not (Path(root) / "shims" / "uv").exists():
        pytest.skip("pyenv has no shim for uv (installed without `pyenv rehash`): nothing hides it")
    project = render_plain(tmp_path / "p", {"python_version": "3.13"})
    env = {
        "PATH": f"{root}/shims:{Path(pyenv).parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYENV_ROOT": root,
    }
    shim = subprocess.run(["uv", "--version"], cwd=project, env=env, capture_output=True, text=True)
    if shim.returncode == 0:
        pytest.skip("the pyenv shim runs uv here: no Python of .python-version hides it")

    doctor = subprocess.run(
        ["make", "doctor"], cwd=project, env=env, capture_output=True, text=True, check=False
    )
    setup = subprocess.run(
        ["make", "-n", "setup"], cwd=project, env=env, capture_output=True, text=True
    )

    assert "[FIX] uv runs here: uv is installed only in another pyenv Python" in doctor.stdout
    assert setup.stdout.splitlines()[0] == f"{root}/versions/{owners[-1]}/bin/uv sync"


def test_an_interrupted_copy_is_recovered_by_copying_again_with_overwrite(tmp_path: Path) -> None:
    dest = tmp_path / "project"
    command = [sys.executable, "-m", "copier", "copy", "--defaults", "--vcs-ref", "HEAD"]
    copying = subprocess.Popen(  # this suite's own Copier
        [*command, "--quiet", str(TEMPLATE), str(dest)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (dest.is_dir() and any(dest.iterdir())):
        time.sleep(0.002)
    copying.terminate()  # SIGTERM as the first files appear
    copying.wait()
    interrupted = dest.is_dir() and not (dest / ANSWERS).exists()

    run([*command, "--overwrite", "--quiet", str(TEMPLATE), str(dest)], tmp_path)

    fresh = render(tmp_path / "fresh")
    assert files_of(dest) == files_of(fresh)
    for name in files_of(fresh) - {ANSWERS}:
        assert (dest / name).read_bytes() == (fresh / name).read_bytes(), name
    if not interrupted:
        pytest.skip("the copy finished before it could be interrupted; the recopy was checked")


def test_the_secrets_hook_passes_on_every_rendered_file(
    tmp_path: Path, render_plain: Callable[..., Path]
) -> None:
    """The project's own detect-secrets hook, as its .pre-commit-config.yaml runs it, finds nothing in
    what the template renders: placeholders such as USER:PASSWORD@SERVER are written so it does not.
    Every covering set's distinct files, in one run of the hook (it starts in about a second).
    """
    projects = [
        render_plain(tmp_path / f"set{i}", answers) for i, answers in enumerate(COVERING_SET)
    ]
    hooks = {
        json.dumps(hook)
        for project in projects
        for repo in yaml.safe_load((project / ".pre-commit-config.yaml").read_bytes())["repos"]
        for hook in repo["hooks"]
        if hook["id"] == "detect-secrets"
    }
    assert len(hooks) == 1, hooks
    hook = json.loads(hooks.pop())
    files = distinct_files(projects, lambda name: not re.match(hook["exclude"], name))
    command = hook["entry"].removeprefix("uv run --frozen ").split()
    plugins = str(
        projects[0] / "scripts" / "secret_patterns.py"
    )  # run from tmp_path, not a project
    command = [plugins if part == "scripts/secret_patterns.py" else part for part in command]

    scanned = run(
        [*command, *(str(path.relative_to(tmp_path)) for path in files)], tmp_path, check=False
    )

    assert scanned.returncode == 0, scanned.stdout


@pytest.mark.parametrize("index", ["cpu", "cu128", "pypi"])
def test_each_torch_index_renders_a_pyproject_uv_reads(
    tmp_path: Path, render_plain: Callable[..., Path], index: str
) -> None:
    project = render_plain(tmp_path / "p", {"ml_framework": "pytorch", "torch_index": index})
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    uv = pyproject["tool"]["uv"]

    if index == "pypi":
        assert "index" not in uv
        assert "sources" not in uv
    else:
        url = f"https://download.pytorch.org/whl/{index}"
        assert uv["index"] == [{"name": f"pytorch-{index}", "url": url, "explicit": True}]
        assert uv["sources"] == {"torch": [{"index": f"pytorch-{index}"}]}
    # uv itself reads it: its settings and sources parse (an unknown key or a bad table is an error).
    parsed = run(["uv", "lock", "--check", "--offline"], project, check=False)
    assert "failed to parse" not in parsed.stderr.lower(), parsed.stderr
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert "torch_index=pypi" in readme or index == "pypi"


def test_doctor_says_when_the_torch_index_does_not_answer(
    tmp_path: Path, render_plain: Callable[..., Path]
) -> None:
    project = render_plain(tmp_path / "p", {"ml_framework": "pytorch"})
    closed = f"http://127.0.0.1:{free_port()}/whl/cpu"  # nothing listens there: refused at once
    env = project_env() | {"UV_INDEX": f"pytorch-cpu={closed}"}

    doctor = run([sys.executable, "scripts/doctor.py"], project, env, check=False)

    assert doctor.returncode == 1
    assert f"[FIX] the package index pytorch-cpu ({closed}) answers: it does not (" in doctor.stdout
    assert 'ANSWERS="torch_index=pypi"' in doctor.stdout
    (tmp_path / "mirror").mkdir()
    env["UV_INDEX"] = f"pytorch-cpu={(tmp_path / 'mirror').as_uri()}"
    doctor = run([sys.executable, "scripts/doctor.py"], project, env, check=False)
    assert (
        f"[ok ] the package index pytorch-cpu ({(tmp_path / 'mirror').as_uri()})" in doctor.stdout
    )


@pytest.mark.slow
def test_a_pytorch_project_resolves_from_pypi_alone(
    tmp_path: Path, render_plain: Callable[..., Path]
) -> None:
    """On a network that reaches only PyPI (this machine's case, and many companies'), the `pypi`
    choice locks: torch and everything else from PyPI, no other index named."""
    project = render_plain(tmp_path / "p", {"ml_framework": "pytorch", "torch_index": "pypi"})
    run(["uv", "lock", "--quiet"], project)
    lock = (project / "uv.lock").read_text(encoding="utf-8")
    torch = lock.split('\nname = "torch"\n', 1)[1].split("\n\n", 1)[0]
    assert 'source = { registry = "https://pypi.org/simple" }' in torch
    assert "download.pytorch.org" not in lock
