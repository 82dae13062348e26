"""Leftovers of a conflicted merge or `copier update`, which git and Copier let you commit unnoticed.

    uv run python scripts/check_conflicts.py

`make lint`, the pre-commit hook `conflict-leftovers` and `make update-template` run it. It looks at
tracked and untracked files alike (ignored ones aside) for unmerged paths, `*.rej` files (Copier's
`--conflict rej`) and conflict markers (a line starting with seven `<`, `|` or `>` and a space). Exits 1
listing each, 0 when there are none. Standard library only.
"""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^(<{7}|\|{7}|>{7})( |$)", re.MULTILINE)


def _git(*args: str) -> list[str]:
    completed = subprocess.run(  # noqa: S603  # fixed git commands, no shell
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True  # noqa: S607
    )
    return [line for line in completed.stdout.splitlines() if line]


def _has_markers(path: Path) -> bool:
    try:
        return MARKER.search(path.read_text(encoding="utf-8")) is not None
    except OSError:
        return False  # unreadable or gone
    except UnicodeDecodeError:
        return False  # binary: not a text conflict


def leftovers() -> list[str]:
    """One line per problem, naming the file and what to do."""
    unmerged = sorted({line.split("\t", 1)[1] for line in _git("ls-files", "--unmerged")})
    files = _git("ls-files", "--cached", "--others", "--exclude-standard", "--deduplicate")
    problems = [f"{path}: unmerged; resolve it and `git add` it" for path in unmerged]
    for path in sorted(set(files)):
        if path.endswith(".rej"):
            original = path.removesuffix(".rej")
            problems.append(
                f"{path}: hunks Copier could not apply; merge them into {original} and delete it"
            )
        elif path not in unmerged and _has_markers(ROOT / path):
            problems.append(f"{path}: conflict markers; keep what you want and delete the markers")
    return problems


def main() -> int:
    try:
        problems = leftovers()
    except (OSError, subprocess.CalledProcessError) as exc:  # no git, or not a repository
        print(f"conflict check skipped: not a git repository, or no git ({type(exc).__name__})")
        return 0
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} conflict leftover(s): resolve them before committing (README.md)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
