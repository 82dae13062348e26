"""Rendering the template and running the generated project's own commands, for every test module."""

import os
import re
import shutil
import socket
import subprocess
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any, Literal

import copier

TEMPLATE = Path(__file__).resolve().parents[1]
PYTHON_VERSIONS = ("3.11", "3.12", "3.13", "3.14", "3.15")

# The one canonical answers set: what `copier copy --defaults` gives. Tests override a few keys.
DEFAULT_ANSWERS: dict[str, Any] = {
    "project_name": "My ML Project",
    "project_slug": "my-ml-project",
    "package_name": "my_ml_project",
    "description": "A machine-learning project that starts simple, beats a baseline and tracks every experiment.",
    "author_name": "ML Team",
    "author_email": "ml-team@example.com",
    "python_version": "3.12",
    "license": "MIT",
    "task": "classification",
    "ml_framework": "scikit-learn",
    "experiment_tracking": "mlflow",
    "ci": "github",
    "use_docker": True,
    "template_updates": True,
}

# A covering set of answers: every value of every question, and every pair of values of the questions
# that interact (task x framework, task x tracking, task x docker, framework x tracking, framework x
# docker, ci x docker, ci x template_updates, tracking x docker), at least once. Python 3.11 for
# PyTorch: the only version with a local torch wheel.
COVERING_SET: list[dict[str, Any]] = [
    {},  # the defaults: scikit-learn, mlflow, Python 3.12, MIT, GitHub, Docker, template updates
    {
        # Names unlike the defaults: non-ASCII, a leading digit, a package name of the team's choosing.
        "project_name": "2nd Détection de fraude",
        "package_name": "fraud_detection",
        # Hostile but accepted text: emoji, quotes, a backslash, shell syntax (tests/test_questions.py).
        "description": 'Détecte la fraude 🚀 "vite", coûts ${HOME} & back\\slash',
        "author_name": "Zoë Ørsted-Ñúñez 🚀",
        "task": "regression",
        "ml_framework": "scikit-learn",
        "experiment_tracking": "none",
        "python_version": "3.11",
        "license": "Apache-2.0",
        "ci": "none",
        "use_docker": False,
    },
    {
        "ml_framework": "pytorch",
        "experiment_tracking": "mlflow",
        "python_version": "3.11",
        "license": "BSD-3-Clause",
        "template_updates": False,
    },
    {
        "task": "regression",
        "ml_framework": "pytorch",
        "experiment_tracking": "none",
        "python_version": "3.11",
        "license": "Proprietary",
        "ci": "none",
    },
    {"task": "regression", "python_version": "3.13", "license": "Proprietary", "use_docker": False},
    {
        "ml_framework": "pytorch",
        "experiment_tracking": "none",
        "python_version": "3.11",
        "use_docker": False,
    },
]

# Per task: the bundled dataset, and the metric that says whether the model beats the baseline.
DATASETS = {"classification": "wine", "regression": "diabetes"}
PRIMARY_METRIC = {"classification": "balanced_accuracy", "regression": "r2"}
# Per framework (every choice of `ml_framework`): its one module in the generated package (copier.yml's
# computed `framework.module`), and an integer setting the end-to-end tests vary across runs.
FRAMEWORKS: dict[str, dict[str, str]] = {
    "scikit-learn": {"module": "sklearn_model", "varied": "model.max_depth"},
    "pytorch": {"module": "torch_model", "varied": "model.hidden_units"},
}
# Per tracking backend (every choice of `experiment_tracking`): its one module in the generated package
# (copier.yml's computed `tracker.module`), with its tests in tests/test_<module>.py.
TRACKERS: dict[str, dict[str, str]] = {
    "mlflow": {"module": "mlflow_tracking"},
    "none": {"module": "jsonl_tracking"},
}


def render(
    dest: Path,
    answers: Mapping[str, Any] | None = None,
    *,
    src: Path = TEMPLATE,
    vcs_ref: str | None = "HEAD",
) -> Path:
    """Copy the template into `dest` through Copier's API, as a user would, never trusting it."""
    copier.run_copy(
        str(src),
        dest,
        data=dict(answers or {}),
        defaults=True,
        vcs_ref=vcs_ref,
        quiet=True,
        unsafe=False,
    )
    return dest


def refused_names(name: str) -> set[str]:
    """A list of includes/names.jinja (`{%- set NAME = "a b c".split() -%}`: one string, which Jinja
    compiles in a millisecond where a list literal of 400 names took twelve, on every copy)."""
    text = (TEMPLATE / "includes" / "names.jinja").read_text(encoding="utf-8")
    return set(text.split(f'set {name} = "', 1)[1].split('".split()', 1)[0].split())


def copy_template_tree(dest: Path) -> Path:
    """This template's files (no git history, no caches) in a new folder, to be versioned by a test."""
    dest.mkdir(parents=True)
    shutil.copy2(TEMPLATE / "copier.yml", dest)
    ignore = shutil.ignore_patterns("__pycache__", "*.py[co]")
    for folder in ("includes", "template"):
        shutil.copytree(TEMPLATE / folder, dest / folder, ignore=ignore)
    return dest


@cache
def python_bin_dirs() -> tuple[str, ...]:
    """Directories holding `python3.X` for each supported version found here (pyenv builds first)."""
    dirs: list[str] = []
    pyenv = shutil.which("pyenv")
    for version in PYTHON_VERSIONS:
        found = None
        if pyenv:
            listed = subprocess.run(
                [pyenv, "versions", "--bare"], capture_output=True, text=True, check=False
            ).stdout.split()
            matches = sorted(
                (v for v in listed if v.startswith(version + ".") and v.count(".") == 2),
                key=lambda v: int(v.split(".")[2]),
            )
            if matches:
                prefix = subprocess.run(
                    [pyenv, "prefix", matches[-1]], capture_output=True, text=True, check=True
                ).stdout.strip()
                found = str(Path(prefix) / "bin")
        if found is None and (exe := shutil.which(f"python{version}")):
            found = str(Path(exe).parent)
        if found and found not in dirs:
            dirs.append(found)
    return tuple(dirs)


def python_available(version: str) -> bool:
    return any((Path(d) / f"python{version}").exists() for d in python_bin_dirs())


def project_env(uv_cache: Path | None = None) -> dict[str, str]:
    """The environment a generated project's commands run in: this machine's Pythons and uv on PATH,
    no interpreter downloads, and none of the template's own virtual environment."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE", "UV_PROJECT_ENVIRONMENT"}
    }
    uv = shutil.which("uv")
    assert uv, "uv is not on PATH: run the tests with `uv run pytest`"
    env["PATH"] = os.pathsep.join([str(Path(uv).parent), *python_bin_dirs(), env.get("PATH", "")])
    env["UV_PYTHON_DOWNLOADS"] = "never"
    if uv_cache is not None:
        env["UV_CACHE_DIR"] = str(uv_cache)
    return env


def run(
    args: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a command, failing the test with its whole output when it fails."""
    completed = subprocess.run(
        list(args), cwd=cwd, env=dict(env or project_env()), capture_output=True, text=True
    )
    if check and completed.returncode != 0:
        raise AssertionError(
            f"`{' '.join(args)}` exited {completed.returncode} in {cwd}\n"
            f"--- stdout ---\n{completed.stdout[-20000:]}\n--- stderr ---\n{completed.stderr[-20000:]}"
        )
    return completed


def git_identity(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env` (default: the project environment) with a git author and committer, for commits in tests."""
    return dict(env or project_env()) | {
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }


def git_init(project: Path, env: Mapping[str, str] | None = None) -> None:
    """Make `project` a git repository with everything committed, as a new user would."""
    env = git_identity(env)
    run(["git", "init", "--quiet", "--initial-branch=main"], project, env)
    run(["git", "add", "--all"], project, env)
    run(
        ["git", "commit", "--quiet", "--no-verify", "--message", "Generated from the template"],
        project,
        env,
    )


def files_of(project: Path) -> set[str]:
    """Every file of a rendered project, as POSIX paths relative to it (git's own folder left out)."""
    return {
        path.relative_to(project).as_posix()
        for path in project.rglob("*")
        if path.is_file() and ".git" not in path.relative_to(project).parts[:1]
    }


def distinct_files(projects: Sequence[Path], keep: Callable[[str], bool] = bool) -> list[Path]:
    """One path per distinct (relative name, content) among the projects' files that `keep` accepts:
    renders share most files, and a linter gives the same verdict on the same bytes under the same
    name, so each is checked once."""
    seen: dict[tuple[str, bytes], Path] = {}
    for project in projects:
        for name in sorted(files_of(project)):
            if keep(name):
                seen.setdefault((name, (project / name).read_bytes()), project / name)
    return list(seen.values())


@cache
def local_torch_index(root: Path) -> Path | None:
    """A PEP 503 simple index holding this machine's CPU wheel of torch, to stand in for the PyTorch CPU
    index (unreachable here) behind the generated project's named index `pytorch-cpu`. None if no wheel.

    The wheel is looked for in $TORCH_WHEEL, then in the folders pip is configured to find links in.
    """
    candidates = [Path(os.environ["TORCH_WHEEL"])] if os.environ.get("TORCH_WHEEL") else []
    pip_config = ""
    for folder in python_bin_dirs():  # a Python with pip (the test's own venv has none)
        listed = subprocess.run(
            [str(Path(folder) / "python3"), "-m", "pip", "config", "list"],
            capture_output=True,
            text=True,
            check=False,
        )
        if listed.returncode == 0:
            pip_config = listed.stdout
            break
    for line in pip_config.splitlines():
        if "find-links" in line:
            for folder in line.split("=", 1)[1].strip("'\" ").split():
                candidates += sorted(Path(folder.removeprefix("file://")).glob("torch-*+cpu-*.whl"))
    wheels = [path for path in candidates if path.is_file()]
    if not wheels:
        return None
    index = root / "torch-index"
    (index / "torch").mkdir(parents=True, exist_ok=True)
    links = "".join(f'<a href="{wheel.resolve().as_uri()}">{wheel.name}</a>\n' for wheel in wheels)
    (index / "torch" / "index.html").write_text(f"<html><body>\n{links}</body></html>\n", "utf-8")
    return index


def torch_wheel_python(index: Path) -> str | None:
    """The Python version (3.X) the local torch wheel is built for."""
    for wheel in (index / "torch" / "index.html").read_text(encoding="utf-8").split(">"):
        if "-cp3" in wheel:
            tag = wheel.split("-cp3", 1)[1].split("-", 1)[0]
            return f"3.{tag}"
    return None


def effective(answers: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical answers with `answers` applied."""
    return DEFAULT_ANSWERS | dict(answers)


def assert_answers_reached_output(project: Path, answers: Mapping[str, Any]) -> None:
    """Fail unless every answer shows in the rendered files: a mistyped answer key would otherwise
    silently test the defaults."""
    full = effective(answers)
    recorded = (project / ".copier-answers.yml").read_text(encoding="utf-8")
    pyproject = (project / "pyproject.toml").read_text(encoding="utf-8")
    package = project / "src" / full["package_name"]
    github = full["ci"] == "github"
    checks = {
        "python_version": f'requires-python = ">={full["python_version"]}"' in pyproject,
        "license": (
            f'license = "{full["license"]}"' in pyproject
            if full["license"] != "Proprietary"
            else 'license = "LicenseRef-Proprietary"' in pyproject
        ),
        "ml_framework": (package / f"{FRAMEWORKS[full['ml_framework']]['module']}.py").is_file(),
        "experiment_tracking": ("mlflow" in pyproject) == (full["experiment_tracking"] == "mlflow")
        and [path.name for path in package.glob("*_tracking.py")]
        == [f"{TRACKERS[full['experiment_tracking']]['module']}.py"]
        and (
            project / "tests" / f"test_{TRACKERS[full['experiment_tracking']]['module']}.py"
        ).is_file(),
        "ci": (project / ".github" / "workflows" / "ci.yml").is_file() == github,
        "use_docker": (project / "Dockerfile").is_file() == full["use_docker"],
        "template_updates": (project / ".github" / "workflows" / "template-update.yml").is_file()
        == (github and full["template_updates"]),
        "project_name": (project / "README.md")
        .read_text("utf-8")
        .startswith(f"# {full['project_name']}\n"),
        "package_name": package.is_dir(),
        "task": f"data/raw/{DATASETS[full['task']]}.csv"
        in (project / "configs" / "train.yaml").read_text("utf-8"),
    }
    for key in answers:
        assert key in checks or f"{key}:" in recorded, f"answer {key!r} is not a question"
        assert checks.get(key, True), f"answer {key}={answers[key]!r} did not reach the output"


def container_engine() -> str | None:
    """`docker` where its daemon answers, else `podman` where it works, else None."""
    for engine in ("docker", "podman"):
        exe = shutil.which(engine)
        if exe and subprocess.run([exe, "info"], capture_output=True, check=False).returncode == 0:
            return engine
    return None


def base_images(dockerfile: Path) -> set[str]:
    """The images a Dockerfile builds from: its FROM lines and COPY --from=IMAGE sources."""
    text = dockerfile.read_text(encoding="utf-8")
    images = set(re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE))
    images |= set(re.findall(r"COPY --from=(\S+:\S+)", text))
    stages = set(re.findall(r"^FROM \S+ AS (\S+)", text, flags=re.MULTILINE))
    return {image for image in images if image not in stages}


def image_available(engine: str, image: str) -> bool:
    """True if the engine has the image, or can pull it (bounded to two minutes)."""
    for args in (["image", "inspect", image], ["pull", "--quiet", image]):
        try:
            done = subprocess.run([engine, *args], capture_output=True, timeout=120, check=False)
        except subprocess.TimeoutExpired:
            return False
        if done.returncode == 0:
            return True
    return False


def cannot_run(engine: str, image: str) -> str | None:
    """None when the engine runs a container of the image, else the first line of its error."""
    try:
        done = subprocess.run(
            [engine, "run", "--rm", "--entrypoint", "true", image],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "`run` did not answer in 120 s"
    lines = done.stderr.strip().splitlines()
    return None if done.returncode == 0 else (lines[-1] if lines else f"exit {done.returncode}")


def commit(project: Path, message: str = "Team edits") -> str:
    """Commit everything in `project` (hooks skipped, empty allowed); returns the commit's hash."""
    env = git_identity()
    run(["git", "add", "--all"], project, env)
    run(["git", "commit", "--quiet", "--no-verify", "--allow-empty", "-m", message], project, env)
    return run(["git", "rev-parse", "HEAD"], project).stdout.strip()


def update(
    project: Path,
    vcs_ref: str | copier.VcsRef | None = None,
    conflict: Literal["inline", "rej"] = "inline",
    **options: Any,
) -> None:
    """`copier update` through the API, as the tests run it: defaults, never trusting the template."""
    copier.run_update(
        project,
        defaults=True,
        overwrite=True,
        vcs_ref=vcs_ref,
        conflict=conflict,
        quiet=True,
        unsafe=False,
        **options,
    )


def free_port() -> int:
    """A TCP port free on the loopback interface (for a server a test or benchmark starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
