"""scripts/releases.py: the release record in CHANGELOG.md, and the tags the release workflow makes."""

import sys
from pathlib import Path

import pytest

from .helpers import TEMPLATE, git_identity, run

sys.path.insert(0, str(TEMPLATE / "scripts"))
import releases  # the template repository's own script, as its workflow runs it


def repo_with_commits(path: Path, count: int) -> list[str]:
    env = git_identity()
    run(["git", "init", "--quiet", "--initial-branch=main"], path, env)
    commits = []
    for number in range(count):
        run(["git", "commit", "--quiet", "--allow-empty", "-m", f"c{number}"], path, env)
        commits.append(run(["git", "rev-parse", "HEAD"], path).stdout.strip())
    return commits


def test_this_changelog_records_0_1_0_first() -> None:
    recorded = releases.recorded()
    assert recorded[0] == releases.Release("0.1.0", "6260c30deb64ac0b67794ab517d02b7162595219")


def test_recorded_releases_are_tagged_once_in_version_order(tmp_path: Path) -> None:
    first, second = repo_with_commits(tmp_path, 2)
    (tmp_path / "CHANGELOG.md").write_text(
        f"# Changelog\n\n## Unreleased\n\n## 0.10.0 (2026-12-01, commit {second})\n\n"
        f"## 0.9.0 (2026-11-26, commit {first})\n",
        encoding="utf-8",
    )

    assert releases.tag(tmp_path) == ["0.9.0", "0.10.0"]
    assert releases.tag(tmp_path) == []  # idempotent: the workflow runs on every push
    assert run(["git", "rev-parse", "0.9.0^{commit}"], tmp_path).stdout.strip() == first


def test_a_release_never_moves_and_a_missing_commit_is_named(tmp_path: Path) -> None:
    first, second = repo_with_commits(tmp_path, 2)
    run(["git", "tag", "1.0.0", second], tmp_path)
    changelog = tmp_path / "CHANGELOG.md"
    changelog.write_text(f"## 1.0.0 (2026-11-26, commit {first})\n", encoding="utf-8")

    with pytest.raises(SystemExit, match="releases never move"):
        releases.tag(tmp_path)

    changelog.write_text(f"## 1.1.0 (2026-11-26, commit {'a' * 40})\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=f"commit {'a' * 40} is not in this clone"):
        releases.tag(tmp_path)
