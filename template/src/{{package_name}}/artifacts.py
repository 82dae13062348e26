"""Reading and writing models and JSON records."""

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import joblib

from .errors import PipelineError


def save_model(model: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)


def load_model(path: Path) -> Any:
    """Load a model saved by `save_model`. Unpickling runs code: load only models you trust."""
    if not path.is_file():
        raise PipelineError(f"{path} not found: run `make train` first")
    return joblib.load(path)


def write_json(data: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise PipelineError(f"{path} not found: run `make train` first")
    return json.loads(path.read_text(encoding="utf-8"))


def git_commit(directory: Path = Path()) -> str | None:
    """The commit checked out in `directory`, or None outside a git repository."""
    git = shutil.which("git")
    if git is None:
        return None
    completed = subprocess.run(  # noqa: S603  # fixed arguments, no shell
        [git, "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        return None
    return completed.stdout.strip() or None
