"""Run folders and champions: where each run's files are, which run each experiment serves, and
pruning the rest.

- A run's folder, models/runs/<run id>/: `model.joblib` and `baseline.joblib`, `metadata.json` (the
  run's record, with the SHA-256 of each model file), `config.yaml` (its effective config) and
  `held_out.npy` (which rows of its table it held out). Its reports are in reports/runs/<run id>/.
- An experiment's champion, models/champions/<experiment>.json: the run that `predict`, `evaluate`
  and the image use, and the SHA-256 of its model files. Promoting writes that record; nothing is
  copied. The first run of an experiment becomes its champion; after that only a decision (`promote`,
  `--promote`) replaces it.
- Projects trained before this layout promoted by copying a run's files into models/, beside
  models/metadata.json: that is read as its experiment's champion until a promotion replaces it.

Reading and writing go through `storage`; a promotion and a pruning hold the same lock.
"""

import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

from .config import PROJECT
from .data import TableSchema
from .errors import ModelMismatchError, PipelineError
from .storage import (
    exclusive,
    fingerprint,
    folder_size,
    load_model,
    read_json,
    remove_file,
    remove_folder,
    write_json,
)

if TYPE_CHECKING:
    from .config import OutputConfig

logger = logging.getLogger(__name__)

MODEL, BASELINE, METADATA, CONFIG, HELD_OUT = (
    "model.joblib",
    "baseline.joblib",
    "metadata.json",
    "config.yaml",
    "held_out.npy",
)
MODEL_FILES = (MODEL, BASELINE)
RUN_ID = re.compile(r"[0-9a-f]{32}")
# What a missing or malformed schema raises (a name: Black formats `except (A, B):` differently for
# Python 3.14, whose `except A, B:` older versions cannot parse).
NOT_A_SCHEMA = (KeyError, TypeError, ValueError)
PREFIX = re.compile(r"[0-9a-f]{4,32}")
SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Champion:
    """The run an experiment serves: its folder, the SHA-256 of its model files as recorded when it
    was promoted, and its metadata (schema, split, params, tags)."""

    experiment: str
    run_id: str
    folder: Path
    sha256: Mapping[str, str]
    metadata: Mapping[str, Any]
    record: Path

    @property
    def schema(self) -> TableSchema:
        try:
            return TableSchema.from_json(self.metadata["schema"])
        except NOT_A_SCHEMA:
            raise PipelineError(
                f"{self.folder / METADATA}: no table schema in it: train and promote again"
            ) from None

    def load(self, name: str) -> Any:
        """The model (MODEL) or baseline (BASELINE), checked against its recorded SHA-256: a pickle
        runs code when loaded, so a file that changed since it was promoted is never loaded."""
        return load_model(self.folder / name, self.sha256[name])


def champion_file(outputs: "OutputConfig", experiment: str) -> Path:
    """models/champions/<experiment>.json; a name that is not a safe file name is made one, with a
    short hash of the name so that two names never share a record."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", experiment).strip("._-")[:100]
    if safe != experiment:
        safe = f"{safe}-{hashlib.sha256(experiment.encode()).hexdigest()[:8]}"
    return outputs.champions_dir / f"{safe}.json"


def find_champion(outputs: "OutputConfig", experiment: str) -> Champion | None:
    """The champion of an experiment, or None when it has none yet."""
    path = champion_file(outputs, experiment)
    if not path.exists():
        return _earlier_champion(outputs, experiment)
    run_id, sha256 = _champion_record(path)
    folder = outputs.runs_dir / run_id
    if not folder.is_dir() or folder.is_symlink():
        raise PipelineError(
            f"{path}: its run {run_id[:8]} has no folder in {outputs.runs_dir} (deleted?): "
            "promote another run"
        )
    metadata = run_metadata(folder)
    if metadata.get("experiment") != experiment:
        raise PipelineError(
            f"{path}: its run {run_id[:8]} is of experiment {metadata.get('experiment')}, not "
            f"{experiment}: promote a run of {experiment}"
        )
    return Champion(experiment, run_id, folder, sha256, metadata, path)


def _champion_record(path: Path) -> tuple[str, dict[str, str]]:
    """A champion record's run id and checksums, or one error naming the file."""
    problem = (
        f"{path}: not a champion record (a run id and the SHA-256 of its files): promote a run"
    )
    if not path.is_file():
        raise PipelineError(problem)
    try:
        record = read_json(path)
    except PipelineError:
        raise PipelineError(problem) from None
    run_id = record.get("run_id") if isinstance(record, dict) else None
    sha256 = record.get("sha256") if isinstance(record, dict) else None
    if not (isinstance(run_id, str) and RUN_ID.fullmatch(run_id) and _checksums(sha256)):
        raise PipelineError(problem)
    return run_id, dict(sha256)


def champion_runs(outputs: "OutputConfig") -> set[str]:
    """Every champion's run id: the runs pruning never touches. A record that cannot be read is an
    error: pruning stops rather than guess which run it names."""
    folder = outputs.champions_dir
    if folder.exists() and not folder.is_dir():
        raise PipelineError(f"{folder} is not a folder of champion records: move it away")
    found = {_champion_record(path)[0] for path in sorted(folder.glob("*.json")) if folder.is_dir()}
    earlier = _earlier_record(outputs)
    if earlier is not None:
        found.add(str(earlier["run_id"]))
    return found


def run_metadata(folder: Path) -> dict[str, Any]:
    """A run folder's metadata.json, which must name the run the folder is named after."""
    metadata = read_json(folder / METADATA)
    if not isinstance(metadata, dict) or metadata.get("run_id") != folder.name:
        raise PipelineError(f"{folder / METADATA}: not the metadata of run {folder.name}")
    return metadata


def find_run(outputs: "OutputConfig", run_id: str) -> Path | None:
    """The folder of the run whose id starts with `run_id` (4 to 32 hexadecimal characters), or None
    when this checkout has none."""
    if not PREFIX.fullmatch(run_id):
        raise PipelineError(f"run id {run_id!r}: give 4 to 32 of its hexadecimal characters")
    runs_dir = outputs.runs_dir
    folders = [
        folder
        for folder in (sorted(runs_dir.iterdir()) if runs_dir.is_dir() else [])
        if RUN_ID.fullmatch(folder.name)
        and folder.name.startswith(run_id)
        and (folder / METADATA).is_file()
    ]
    if len(folders) > 1:
        raise PipelineError(f"run {run_id!r} matches several runs: give more of its id")
    return folders[0] if folders else None


def promote(
    outputs: "OutputConfig", folder: Path, register: Callable[[], str | None]
) -> dict[str, Any]:
    """Make the run in `folder` its experiment's champion, under the lock (so that no prune or other
    promotion runs meanwhile): its files checked against the SHA-256 its metadata recorded, then
    `register` (the tracking backend's record of it: its version, or None), then the champion record.
    """
    with exclusive(outputs.lock_file, "waiting for another promotion to finish"):
        if not (folder / METADATA).is_file():
            raise PipelineError(f"run {folder.name[:8]}: its folder is gone (pruned meanwhile?)")
        metadata = run_metadata(folder)
        experiment = str(metadata.get("experiment"))
        sha256 = _verified(folder, metadata)
        version = register()
        record = {
            "experiment": experiment,
            "run_id": folder.name,
            "run_name": metadata.get("run_name"),
            "promoted": datetime.now().astimezone().isoformat(timespec="seconds"),
            "sha256": sha256,
            "registered_version": version,
        }
        _adopt_earlier_champion(outputs, replaced=experiment)
        write_json(record, champion_file(outputs, experiment))
    return record


def _verified(folder: Path, metadata: Mapping[str, Any]) -> dict[str, str]:
    """The SHA-256 of the run's files, each the one its metadata recorded. A run of an earlier
    version recorded none (no `sha256` at all): its files are taken as they are now, and it is said.
    """
    recorded = metadata.get("sha256")
    names = [*MODEL_FILES, *([HELD_OUT] if isinstance(metadata.get("split"), dict) else [])]
    actual = {}
    for name in names:
        if not (folder / name).is_file():
            raise PipelineError(f"{folder / name} not found: the run's folder is incomplete")
        actual[name] = fingerprint(folder / name)
    if recorded is None and "sha256" not in metadata:
        logger.warning(
            "Run %s recorded no SHA-256 (an earlier version): taken as it is", folder.name[:8]
        )
        return actual
    for name in names:
        expected = recorded.get(name) if isinstance(recorded, dict) else None
        if expected != actual[name]:
            raise ModelMismatchError(
                f"{folder / name}: its SHA-256 is not the one its run recorded (changed since, "
                "copied half-way, or the record damaged): refused; promote another run"
            )
    return actual


@dataclass(frozen=True)
class Pruned:
    """What `prune` deleted (runs, their model folders, bytes) and kept, by reason."""

    run_ids: list[str]
    folders: list[Path]
    freed: int
    kept: dict[str, int]


def prune(
    outputs: "OutputConfig", experiment: str, keep: int, tagged: Iterable[str] = ()
) -> Pruned:
    """Delete the files (models/runs/<id>/, reports/runs/<id>/) of the experiment's runs but the
    `keep` newest, every champion's, and those tagged keep (in `tagged`, or in their metadata)."""
    run_ids: list[str] = []
    folders: list[Path] = []
    freed = 0
    kept = {"champion": 0, "newest": 0, "tagged keep": 0}
    with exclusive(outputs.lock_file, "waiting for a promotion to finish"):
        champions = champion_runs(outputs)
        keep_tagged = set(tagged)
        runs = []
        for folder in sorted(outputs.runs_dir.iterdir()) if outputs.runs_dir.is_dir() else []:
            if not RUN_ID.fullmatch(folder.name) or not folder.is_dir():
                continue  # a run being written (.<id>.partial), or not a run's folder
            if folder.is_symlink():
                logger.warning("Left alone: %s is a link, not a run's own folder", folder)
                continue
            try:
                metadata = run_metadata(folder)
            except PipelineError as exc:
                logger.warning("Left alone: %s", exc)
                continue
            if metadata.get("experiment") != experiment:
                continue
            tags = metadata.get("tags")
            if isinstance(tags, dict) and truthy(tags.get("keep")):
                keep_tagged.add(folder.name)
            # Newest first: by the recorded time (to the second), then by when its model was saved.
            saved = (folder / MODEL).stat().st_mtime_ns if (folder / MODEL).is_file() else 0
            runs.append((_when(metadata.get("time")), saved, folder.name, folder))
        runs.sort(reverse=True)
        for position, (_, _, run_id, folder) in enumerate(runs):
            if run_id in champions:
                kept["champion"] += 1
            elif position < keep:
                kept["newest"] += 1
            elif run_id in keep_tagged:
                kept["tagged keep"] += 1
            else:
                reports = outputs.run_reports_dir / run_id
                freed += folder_size(folder) + (folder_size(reports) if reports.is_dir() else 0)
                # The run's folder first: its reports without it are of no use, not the reverse.
                remove_folder(folder)
                remove_folder(reports)
                run_ids.append(run_id)
                folders.append(folder)
    return Pruned(run_ids, folders, freed, kept)


def truthy(value: Any) -> bool:
    """A tag's value as people and trackers write it: true, "true", "True", "yes", 1."""
    return value is True or str(value).strip().lower() in {"true", "yes", "1"}


def _when(text: Any) -> datetime:
    """A record's time, comparable across time zones (a time without one is this machine's); the
    earliest possible when it has none."""
    local = datetime.now().astimezone().tzinfo
    try:
        when = datetime.fromisoformat(str(text))
    except ValueError:
        return datetime.min.replace(tzinfo=local)
    return when if when.tzinfo is not None else when.replace(tzinfo=local)


def _checksums(sha256: Any) -> TypeGuard[dict[str, str]]:
    """Whether `sha256` records a SHA-256 (64 hexadecimal characters) for each model file."""
    return isinstance(sha256, dict) and all(
        isinstance(sha256.get(name), str) and SHA256.fullmatch(sha256[name]) for name in MODEL_FILES
    )


def _earlier_record(outputs: "OutputConfig") -> dict[str, Any] | None:
    """models/metadata.json, as versions before champion records wrote it on promotion, or None."""
    path = outputs.models_dir / METADATA
    if not path.is_file():
        return None
    record = read_json(path)
    if not isinstance(record, dict) or not RUN_ID.fullmatch(str(record.get("run_id"))):
        raise PipelineError(
            f"{path}: not the metadata of a promoted run (from an earlier version of this "
            "project): delete it, and promote a run (champions are now in models/champions/)"
        )
    return record


def _earlier_champion(outputs: "OutputConfig", experiment: str) -> Champion | None:
    """The champion an earlier version of this project promoted (its files copied into models/, with
    models/metadata.json), when it is of this experiment: its run's folder where it still is, else the
    copies. One that recorded no SHA-256 (0.1.0) is refused: a pickle is never loaded unchecked."""
    record = _earlier_record(outputs)
    if record is None or record.get("experiment") != experiment:
        return None
    path, run_id = outputs.models_dir / METADATA, str(record["run_id"])
    kept = outputs.runs_dir / run_id
    folder = kept if (kept / MODEL).is_file() else outputs.models_dir
    sha256 = record.get("sha256")
    if "sha256" in record and not _checksums(sha256):
        raise PipelineError(
            f"{path}: its SHA-256 record is damaged: train, and promote the new run"
        )
    if not _checksums(sha256):  # 0.1.0 recorded none: nothing to check a pickle against
        raise ModelMismatchError(
            f"{path}: the champion of an earlier version of this project recorded no SHA-256, and a "
            "model file is only loaded once its hash is checked: if you trust "
            f"{outputs.runs_dir / run_id}, `uv run {PROJECT} promote {run_id}` records it; or train "
            "again"
        )
    metadata = run_metadata(kept) if folder == kept else record
    return Champion(experiment, run_id, folder, {**sha256}, metadata, path)


def _adopt_earlier_champion(outputs: "OutputConfig", replaced: str) -> None:
    """Give an earlier version's champion (models/metadata.json) a champion record, unless it is
    being replaced, then delete its copies in models/: one copy of each model file per run."""
    try:
        record = _earlier_record(outputs)
    except PipelineError as exc:
        logger.warning("Left as it is: %s", exc)
        return
    if record is None:
        return
    experiment = str(record.get("experiment"))
    if experiment != replaced:
        try:
            champion = _earlier_champion(outputs, experiment)
        except PipelineError as exc:
            logger.warning("Left as it is: %s", exc)
            return
        if champion is None or champion.folder == outputs.models_dir:
            return  # its run's folder is gone: the copies in models/ are all there is of it
        if not champion_file(outputs, experiment).is_file():
            adopted = {
                "experiment": experiment,
                "run_id": champion.run_id,
                "run_name": record.get("run_name"),
                "promoted": record.get("promoted"),
                "sha256": dict(champion.sha256),
                "registered_version": record.get("registered_version"),
            }
            write_json(adopted, champion_file(outputs, experiment))
        logger.info("The champion of %s is now recorded in %s", experiment, outputs.champions_dir)
    for name in (*MODEL_FILES, METADATA):
        remove_file(outputs.models_dir / name)
