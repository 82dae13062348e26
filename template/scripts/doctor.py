"""What is missing or wrong on this machine for working on the project, and how to fix it.

    make doctor        (or: python3 scripts/doctor.py)

Standard library only, so that it runs before `make setup` has created anything. Exits 1 when something
needs fixing, after saying what to run.
"""

import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Finding:
    ok: bool
    what: str
    fix: str = ""


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603  # fixed commands, no shell
        list(args), cwd=ROOT, capture_output=True, text=True, check=False, timeout=120
    )


def check_tools() -> list[Finding]:
    findings = []
    for tool, fix in (
        ("git", "install git: https://git-scm.com/downloads"),
        ("uv", "install uv: https://docs.astral.sh/uv/getting-started/installation/"),
        ("make", "install make (Debian/Ubuntu: apt install make; macOS: xcode-select --install)"),
    ):
        found = shutil.which(tool)
        findings.append(Finding(found is not None, f"{tool} is installed", fix))
    if shutil.which("uv"):
        findings.append(check_uv_runs())
    return findings


def check_uv_runs() -> Finding:
    """uv can be on PATH and still not run here: a pyenv shim, when uv was installed with pip into
    another pyenv Python, refuses in a folder whose .python-version names a Python without it."""
    done = _run("uv", "--version")
    if done.returncode == 0:
        return Finding(True, f"uv runs here ({done.stdout.strip()})")
    said = (done.stderr or done.stdout).strip().splitlines()
    if "pyenv" in (done.stderr + done.stdout):
        owners = _run("pyenv", "whence", "uv").stdout.split()
        where = f" (Python {', '.join(owners)})" if owners else ""
        return Finding(
            False,
            "uv runs here",
            f"uv is installed only in another pyenv Python{where}, which .python-version hides "
            "here: install uv on its own (https://docs.astral.sh/uv/getting-started/installation/, "
            "or `pipx install uv`); until then `make` uses that Python's uv, the git hooks cannot",
        )
    return Finding(
        False,
        "uv runs here",
        f"`uv --version` fails ({said[-1] if said else done.returncode}): reinstall uv",
    )


def check_python() -> Finding:
    version_file = ROOT / ".python-version"
    if not version_file.is_file():
        return Finding(
            False, ".python-version exists", "restore it: `git checkout .python-version`"
        )
    wanted = version_file.read_text(encoding="utf-8").strip()
    found = _run("uv", "python", "find", f">={wanted}", "--no-project")
    if found.returncode == 0:
        return Finding(True, f"a Python >= {wanted} is available ({found.stdout.strip()})")
    return Finding(False, f"a Python >= {wanted} is available", f"run `uv python install {wanted}`")


def check_git() -> list[Finding]:
    inside = _run("git", "rev-parse", "--git-dir")
    if inside.returncode != 0:
        return [
            Finding(False, "the project is a git repository", "run `git init`, then `make setup`")
        ]
    hook = ROOT / inside.stdout.strip() / "hooks" / "pre-commit"
    installed = hook.is_file() and "pre-commit" in hook.read_text(
        encoding="utf-8", errors="replace"
    )
    return [
        Finding(True, "the project is a git repository"),
        Finding(installed, "the git hooks are installed", "run `make setup`"),
    ]


def _indexes() -> dict[str, str]:
    """The named package indexes of pyproject.toml, with the URLs that UV_INDEX gives them here."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10 or older runs this script: nothing to read them with
        return {}
    with (ROOT / "pyproject.toml").open("rb") as file:
        declared = tomllib.load(file).get("tool", {}).get("uv", {}).get("index", [])
    urls = {index["name"]: index["url"] for index in declared if "name" in index}
    for entry in os.environ.get("UV_INDEX", "").split():  # uv's own override: NAME=URL ...
        name, _, url = entry.partition("=")
        if url and name in urls:
            urls[name] = url
    return urls


def _answers(url: str) -> str:
    """'' when the index answers, else why not."""
    if url.startswith("file://"):
        found = Path(urllib.request.url2pathname(url.removeprefix("file://"))).is_dir()
        return "" if found else "no such folder"
    if not url.startswith(("https://", "http://")):
        return "not an http(s) or file URL"
    # The scheme is checked above (S310: no file: or custom schemes reach urlopen).
    request = urllib.request.Request(url.rstrip("/") + "/", method="HEAD")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310
            return ""
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"
    except (urllib.error.URLError, OSError) as error:
        return str(getattr(error, "reason", error))


def check_indexes() -> list[Finding]:
    findings = []
    for name, url in _indexes().items():
        problem = _answers(url)
        fix = f"it does not ({problem}): reach it, or set UV_INDEX={name}=<a mirror of it>"
        if name.startswith("pytorch-"):
            fix += (
                "; behind a network that reaches only PyPI, take torch from there: "
                '`make update-template ANSWERS="torch_index=pypi"`'
            )
        findings.append(Finding(not problem, f"the package index {name} ({url}) answers", fix))
    return findings


def check_environment() -> list[Finding]:
    if not (ROOT / "uv.lock").is_file():
        return [Finding(False, "uv.lock exists", "run `make setup` and commit uv.lock")]
    locked = _run("uv", "lock", "--check")
    synced = _run("uv", "sync", "--check")
    return [
        Finding(True, "uv.lock exists"),
        Finding(
            locked.returncode == 0,
            "uv.lock is in sync with pyproject.toml",
            "run `uv lock` and commit uv.lock",
        ),
        Finding(
            synced.returncode == 0,
            "the environment (.venv) matches uv.lock",
            "run `make setup`",
        ),
    ]


def diagnose() -> list[Finding]:
    findings = check_tools()
    if not all(finding.ok for finding in findings):
        return findings
    return [*findings, check_python(), *check_git(), *check_indexes(), *check_environment()]


def main() -> int:
    findings = diagnose()
    for finding in findings:
        mark = "ok " if finding.ok else "FIX"
        line = f"[{mark}] {finding.what}"
        if not finding.ok:
            line += f": {finding.fix}"
        sys.stdout.write(line + "\n")
    problems = [finding for finding in findings if not finding.ok]
    if problems:
        sys.stdout.write(f"\n{len(problems)} thing(s) to fix; then run `make check`.\n")
        return 1
    sys.stdout.write(
        "\nAll set: `make check` runs the inner loop, `make check-all` what CI runs.\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
