"""The template's releases, as CHANGELOG.md records them, and the git tags that make them reachable.

    python3 scripts/releases.py list     # VERSION COMMIT, oldest first
    python3 scripts/releases.py tag      # tag each recorded commit that has no tag yet (in this clone)

A release is a CHANGELOG heading `## X.Y.Z (date, commit <40 hex digits>)`. Tags do not travel with
copies of this repository, so the record lives in the file; the `release` workflow runs `tag` on GitHub
and pushes, and the test suite runs it in a throwaway clone. Standard library only.
"""

import re
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
HEADING = re.compile(
    r"^## (?P<version>\d+\.\d+\.\d+) \([^)]*\bcommit (?P<commit>[0-9a-f]{40})\)$", re.MULTILINE
)


class Release(NamedTuple):
    version: str
    commit: str


def recorded(changelog: Path = ROOT / "CHANGELOG.md") -> list[Release]:
    """Every recorded release, oldest first."""
    found = [
        Release(m["version"], m["commit"]) for m in HEADING.finditer(changelog.read_text("utf-8"))
    ]
    return sorted(
        found, key=lambda release: tuple(int(part) for part in release.version.split("."))
    )


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603  # fixed git commands, no shell
        ["git", *args], cwd=repo, capture_output=True, text=True, check=False  # noqa: S607
    )


def tag(repo: Path = ROOT) -> list[str]:
    """Tag each recorded release's commit in `repo`; returns the tags created. A tag that exists on
    another commit, or a commit this clone lacks, is an error: releases never move."""
    created = []
    for release in recorded(repo / "CHANGELOG.md"):
        existing = _git(
            repo, "rev-parse", "--verify", "--quiet", f"refs/tags/{release.version}^{{commit}}"
        )
        if existing.returncode == 0:
            if existing.stdout.strip() != release.commit:
                raise SystemExit(
                    f"tag {release.version} is on {existing.stdout.strip()}, but CHANGELOG.md records "
                    f"{release.commit}: releases never move"
                )
            continue
        if _git(repo, "cat-file", "-e", f"{release.commit}^{{commit}}").returncode != 0:
            raise SystemExit(
                f"release {release.version}: commit {release.commit} is not in this clone "
                "(a shallow clone? fetch the full history)"
            )
        made = _git(repo, "tag", release.version, release.commit)
        if made.returncode != 0:
            raise SystemExit(f"git tag {release.version} failed: {made.stderr.strip()}")
        created.append(release.version)
    return created


def main(argv: list[str]) -> int:
    if argv == ["list"]:
        for release in recorded():
            print(release.version, release.commit)
        return 0
    if argv == ["tag"]:
        for version in tag():
            print(version)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
