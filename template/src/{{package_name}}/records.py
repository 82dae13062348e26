"""Run records, and the interface every tracking backend implements.

A run's record is built once (`Run.record`) and written, the same, to every place that keeps it: the
run's folder (models/runs/<run id>/metadata.json), one line of reports/runs.jsonl, and the tracking
backend. A backend is one module (`tracking.py` names the one this project uses) holding its settings
(`TrackingConfig`, the config's `tracking:` section) and `TRACKER`, an object with the methods of
`Tracker` below: `pipeline.py`, `sweep.py` and `cli.py` call those and nothing else of it.
"""

import json
import logging
import os
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pandas as pd

    from .config import Config


logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Run:
    """What one training run used and achieved."""

    run_id: str
    name: str
    experiment: str
    params: Mapping[str, Any]
    metrics: Mapping[str, Mapping[str, float]]
    tags: Mapping[str, Any] = field(default_factory=dict)
    schema: Mapping[str, Any] = field(default_factory=dict)
    split: Mapping[str, Any] = field(default_factory=dict)
    when: datetime = field(default_factory=lambda: datetime.now().astimezone())

    def record(self) -> dict[str, Any]:
        """The run as one JSON-ready record, with flat names (`model.max_depth`) as trackers want."""
        return {
            "run_id": self.run_id,
            "run_name": self.name,
            "experiment": self.experiment,
            "time": self.when.isoformat(timespec="seconds"),
            "params": flatten(self.params),
            "metrics": flatten(self.metrics),
            "tags": dict(self.tags),
            "schema": dict(self.schema),
            "split": dict(self.split),
        }


def flatten(nested: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"model": {"accuracy": 1.0}} -> {"model.accuracy": 1.0}: the flat names trackers want."""
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat


def run_name(config_file: Path, run_id: str, name: str | None = None) -> str:
    """`--name`, or the config file's stem and the run id's first 8 characters: `train-3f2a9c1b`."""
    return name or f"{config_file.stem}-{run_id[:8]}"


def append_record(record: Mapping[str, Any], path: Path) -> None:
    """Append one run record to a JSON-lines file, whole or not at all: a write that fails part-way
    (a full disk, a quota) is cut back off, and a line left unfinished before is ended first, so that
    a record never runs into another."""
    from .storage import json_text

    line = (json_text(record, indent=None) + "\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(descriptor).st_size
        if size and os.pread(descriptor, 1, size - 1) != b"\n":
            line = b"\n" + line
        try:
            written = 0
            while written < len(line):
                written += os.write(descriptor, line[written:])
        except OSError:
            os.ftruncate(descriptor, size)
            raise
    finally:
        os.close(descriptor)


def read_records(path: Path) -> list[dict[str, Any]]:
    """All runs recorded in a JSON-lines file, oldest first. A damaged line (cut short, not JSON, not
    UTF-8, not a record) is skipped and said, so that one bad line does not hide every run."""
    if not path.is_file():
        return []
    records, damaged = [], []
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
        except ValueError:  # UnicodeDecodeError and JSONDecodeError alike
            record = None
        if isinstance(record, dict) and isinstance(record.get("run_id"), str):
            records.append(record)
        else:
            damaged.append(number)
    if damaged:
        shown = ", ".join(map(str, damaged[:5])) + (", ..." if len(damaged) > 5 else "")
        logger.warning("%s: skipped %d damaged line(s) (%s)", path, len(damaged), shown)
    return records


class Tracker(Protocol):
    """What a tracking backend does for the pipeline. Each method gets the run's config; none is
    called at import, and a backend imports its library only inside them."""

    # Whether the backend serves a UI (`ui` command, `serve_ui`).
    has_ui: bool

    def require(self) -> None:
        """One clear error, before any work, when the backend's library is missing here."""

    def start(
        self, config: "Config", config_file: Path, name: str | None, parent: str | None
    ) -> AbstractContextManager[Run]:
        """A new run's identity (id, name, experiment) for the block; a failure inside marks it
        failed where the backend keeps a status. `parent` is a sweep's run, or None."""
        ...

    def sweep(self, config: "Config", study: str) -> AbstractContextManager[str | None]:
        """The run a sweep's trials nest under, for the block: its id, or None."""
        ...

    def log(
        self, config: "Config", run: Run, table: "pd.DataFrame", reports: Path, folder: Path
    ) -> None:
        """Keep a finished run: its record, dataset, the reports folder (metrics and figures) and,
        where teammates cannot read this disk, the run's folder of model files."""

    def read_runs(self, config: "Config") -> list[dict[str, Any]]:
        """The finished runs of the config's experiment, oldest first, as records with their real
        types."""
        ...

    def fetch(self, config: "Config", run_id: str, runs_dir: Path) -> Path | None:
        """The folder of a run that `run_id` starts, trained in another checkout, downloaded into
        runs_dir; None when the backend keeps no run folders elsewhere."""
        ...

    def promoted(self, config: "Config", run_id: str, experiment: str, folder: Path) -> str | None:
        """Record that a run is its experiment's champion (a registry version, an alias); the
        version, or None."""
        ...

    def shared_champion(self, config: "Config") -> str | None:
        """The run a team's shared registry names the experiment's champion, which a checkout's
        first run must not replace unasked; None without a shared registry."""
        ...

    def tag(self, config: "Config", run_id: str, key: str, value: Any) -> None:
        """Set a tag on a recorded run."""

    def pruned(self, config: "Config", run_ids: list[str], folders: list[Path]) -> None:
        """The files of these runs were deleted from this checkout: keep the records consistent."""

    def serve_ui(self, config: "Config", port: int) -> int:
        """Serve the backend's UI on 127.0.0.1 until interrupted; the exit code."""
        ...
