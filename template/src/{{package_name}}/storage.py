"""All file I/O: tables (CSV or Parquet, by suffix), models, JSON records, figures, the masks of
held-out rows, and run folders.

Writes are atomic: a file is written beside its destination and then renamed over it, so an interrupted
command leaves the previous file whole, never half of a new one.
"""

import csv
import hashlib
import json
import logging
import math
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
import numpy.typing as npt
import pandas as pd

from .errors import DataValidationError, ModelMismatchError, PipelineError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A new path beside `path` to write to, renamed to `path` when the block ends without an error.
    The writer creates the file, so it gets the usual permissions (readable in a container too)."""
    if path.is_dir():
        raise PipelineError(f"{path} is a directory: give a file name")
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise PipelineError(f"{path} is not a regular file: give a new file name (or - for stdout)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PipelineError(f"{path.parent}: cannot create this folder ({exc.strerror})") from None
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        yield temporary
        temporary.replace(path)
    except OSError as exc:
        raise PipelineError(f"{path}: cannot write here ({exc.strerror})") from None
    finally:
        temporary.unlink(missing_ok=True)


def _table_kind(path: Path, hint: str = "") -> str:
    """The kind of a table file that exists, CSV or Parquet; a folder or a missing file is one error."""
    if path.is_dir():
        raise DataValidationError(f"{path} is a directory, not a CSV or Parquet file")
    if not path.is_file():
        raise DataValidationError(f"{path} not found{': ' + hint if hint else ''}")
    return "Parquet" if path.suffix.lower() == ".parquet" else "CSV"


@contextmanager
def _reading(path: Path, kind: str) -> Iterator[None]:
    """Whatever pandas or pyarrow raise while reading `path`, as one clear error."""
    try:
        yield
    except pd.errors.EmptyDataError:
        raise DataValidationError(f"{path}: the file is empty") from None
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataValidationError(f"{path}: not a readable {kind} file ({first_line})") from None


def read_table(path: Path, *, hint: str = "", na_values: Sequence[str] = ()) -> pd.DataFrame:
    """A CSV or Parquet file as a frame, `na_values` (besides pandas' own) read as missing; a missing
    or unreadable file is one clear error."""
    kind = _table_kind(path, hint)
    with _reading(path, kind):
        if kind == "Parquet":
            return _missing(pd.read_parquet(path), na_values)
        _refuse_repeated_columns(path)
        return pd.read_csv(path, na_values=list(na_values))


CHUNK_ROWS = 100_000


def read_table_chunks(
    path: Path, rows: int = CHUNK_ROWS, *, na_values: Sequence[str] = ()
) -> Iterator[pd.DataFrame]:
    """A CSV or Parquet file as frames of at most `rows` rows, in order, their index the row numbers
    of the whole file: memory stays bounded whatever the file's size. Errors as `read_table`'s."""
    kind = _table_kind(path)
    with _reading(path, kind):
        if kind == "Parquet":
            import pyarrow.parquet as pq

            start = 0
            for batch in pq.ParquetFile(path).iter_batches(batch_size=rows):
                frame = _missing(batch.to_pandas(), na_values)
                frame.index = pd.RangeIndex(start, start + len(frame))
                start += len(frame)
                yield frame
            return
        _refuse_repeated_columns(path)
        with pd.read_csv(path, chunksize=rows, na_values=list(na_values)) as reader:
            yield from reader


def _missing(frame: pd.DataFrame, na_values: Sequence[str]) -> pd.DataFrame:
    """A Parquet table's text values that mean missing, as missing (CSV's reader does this itself)."""
    text = [name for name in frame.columns if pd.api.types.is_string_dtype(frame[name])]
    if na_values and text:
        frame[text] = frame[text].replace(list(na_values), np.nan)
    return frame


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write a table as CSV or Parquet, by the suffix (atomically)."""
    write_table_chunks([frame], path)


def write_table_chunks(frames: Iterable[pd.DataFrame], path: Path) -> int:
    """Write frames one after the other as one CSV or Parquet file, by the suffix (atomically: all
    or nothing); returns the number of rows."""
    if path.suffix.lower() not in {".csv", ".parquet"} and not path.is_dir():
        raise PipelineError(f"{path}: give a .csv or .parquet file name")
    written = 0
    with atomic_path(path) as temporary:
        if path.suffix.lower() == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            writer: pq.ParquetWriter | None = None
            try:
                for frame in frames:
                    table = pa.Table.from_pandas(frame, preserve_index=False)
                    writer = writer or pq.ParquetWriter(temporary, table.schema)
                    writer.write_table(table.cast(writer.schema))
                    written += len(frame)
            finally:
                if writer is not None:
                    writer.close()
        else:
            with temporary.open("w", encoding="utf-8", newline="") as stream:
                for frame in frames:
                    frame.to_csv(stream, index=False, header=written == 0)
                    written += len(frame)
    return written


# What makes a spreadsheet read a cell as a formula (OWASP: CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with each text cell a spreadsheet would run as a formula (`=HYPERLINK(...)`, `+cmd|...`,
    anything starting with =, +, -, @, a tab or a carriage return) written after a `'`, which makes a
    spreadsheet show it as text; numbers and other cells as they are. For CSV files people open."""
    safe = frame
    for name in frame.columns:
        values = frame[name]
        if not (values.dtype == object or pd.api.types.is_string_dtype(values)):
            continue
        try:
            risky = values.str.startswith(FORMULA_START, na=False)
        except AttributeError:  # no text in the column
            continue
        if risky.any():
            safe = safe.copy() if safe is frame else safe
            text = values.astype(object)
            safe[name] = text.where(~risky, "'" + text[risky].astype(str))
    return safe


def _refuse_repeated_columns(path: Path) -> None:
    """pandas renames a repeated CSV column (`a`, `a.1`): a silent change of the table, refused."""
    with path.open(newline="", encoding="utf-8") as stream:
        header = next(csv.reader(stream), [])
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise DataValidationError(f"{path}: repeated column names {repeated}: rename them")


def save_model(model: Any, path: Path) -> str:
    """Write a model; returns the SHA-256 of the file, which `load_model` checks before loading it."""
    import joblib

    with atomic_path(path) as temporary:
        joblib.dump(model, temporary)
        return fingerprint(temporary)  # the file is renamed into place as the block ends


def load_model(path: Path, sha256: str | None = None) -> Any:
    """Load a model saved by `save_model`, after checking its SHA-256 when one was recorded. Loading a
    pickle runs the code it names: a file that changed since it was saved is refused, never loaded.
    The bytes checked are the bytes loaded: the file is opened once, hashed, then read again from the
    start, so that replacing it in between changes nothing.
    """
    import joblib

    if not path.is_file():
        raise PipelineError(f"{path} not found: run `make train` first")
    with path.open("rb") as stream:
        if sha256 is not None and _digest(stream) != sha256:
            raise ModelMismatchError(
                f"{path}: its SHA-256 is not the one recorded when it was saved (changed since, or "
                "copied half-way): refused, since loading a pickled model runs its code; train or "
                "promote again"
            )
        stream.seek(0)
        try:
            return joblib.load(stream)
        except ModuleNotFoundError as exc:  # pickled with a module this project no longer has
            raise PipelineError(
                f"{path}: saved by code that is gone (module {exc.name}; a renamed package?): run "
                "`make train` and promote the new run"
            ) from None
        except Exception as exc:  # any failure to unpickle means the same to the user
            raise PipelineError(
                f"{path}: not a model saved by this project ({type(exc).__name__}): run `make train`"
            ) from None


def json_text(data: Any, indent: int | None = 2) -> str:
    """Strict JSON (RFC 8259): a metric that is not a number (NaN, infinity) is written as null."""
    return json.dumps(_finite(data), indent=indent, sort_keys=True, allow_nan=False, default=str)


def _finite(data: Any) -> Any:
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {key: _finite(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [_finite(value) for value in data]
    return data


def write_json(data: Any, path: Path) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(json_text(data) + "\n", encoding="utf-8")


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise PipelineError(f"{path} not found: run `make train` first")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PipelineError(f"{path}: cannot read it ({exc.strerror})") from None
    except ValueError:  # json.JSONDecodeError and UnicodeDecodeError both are
        raise PipelineError(f"{path}: not valid JSON: run `make train` to write it again") from None


def save_figure(figure: "Figure", path: Path) -> None:
    """Write a figure in the format its suffix names (e.g. `.png`)."""
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format=path.suffix.removeprefix(".") or "png")


def hidden_password(text: str) -> str:
    """`text` with the password of any URL in it hidden (`user:***@host`)."""
    return re.sub(r"(://[^:/@\s]+:)[^@/\s]+@", r"\1***@", text)


def fingerprint(path: Path) -> str:
    """SHA-256 of a file's bytes: which data a model was trained on."""
    with path.open("rb") as stream:
        return _digest(stream)


def _digest(stream: BinaryIO) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: stream.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


@contextmanager
def exclusive(lock_file: Path, waiting: str) -> Iterator[None]:
    """Hold `lock_file`'s lock for the block: one process at a time (promoting, creating the tracking
    store). Another waits, saying `waiting` once; the OS frees the lock of a process that dies."""
    from filelock import FileLock, Timeout

    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PipelineError(
            f"{lock_file.parent}: cannot create this folder ({exc.strerror})"
        ) from None
    lock = FileLock(lock_file)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        logger.info("%s (%s)", waiting, lock_file)
        try:
            lock.acquire(timeout=600)
        except Timeout:
            raise PipelineError(f"{lock_file}: still held after 10 minutes: {waiting}") from None
    try:
        yield
    finally:
        lock.release()


def ensure_writable(folder: Path) -> None:
    """Create `folder` if needed and prove that files can be written in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{uuid.uuid4().hex[:12]}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise PipelineError(f"{folder}: cannot write here ({exc.strerror})") from None


def publish_folder(staging: Path, folder: Path) -> None:
    """Move a folder written in full under a temporary name to its final name, in one step: a folder
    under the final name is always complete."""
    try:
        staging.replace(folder)
    except OSError as exc:
        raise PipelineError(f"{folder}: cannot publish the run folder ({exc.strerror})") from None


def save_mask(mask: npt.NDArray[np.bool_], path: Path) -> str:
    """A boolean mask as an .npy file of packed bits (a bit per row); returns the file's SHA-256."""
    with atomic_path(path) as temporary:
        with temporary.open("wb") as stream:
            np.save(stream, np.packbits(mask), allow_pickle=False)
        return fingerprint(temporary)


def load_mask(path: Path, rows: int, sha256: str | None = None) -> npt.NDArray[np.bool_]:
    """The mask of `rows` rows that `save_mask` wrote, checked against its SHA-256 when one was
    recorded. No pickle is loaded, and nothing is allocated before the file's shape is checked."""
    if not path.is_file():
        raise PipelineError(f"{path} not found: the run's folder is incomplete")
    if sha256 is not None and fingerprint(path) != sha256:
        raise PipelineError(f"{path}: its SHA-256 is not the one its run recorded: refused")
    try:
        packed = np.load(path, allow_pickle=False, mmap_mode="r")
        if packed.dtype != np.uint8 or packed.shape != ((rows + 7) // 8,):
            raise ValueError(f"{packed.dtype} of shape {packed.shape}")
        mask: npt.NDArray[np.bool_] = np.unpackbits(packed, count=rows).astype(bool)
    except (OSError, TypeError, ValueError) as exc:
        raise PipelineError(f"{path}: not the mask of {rows} held-out rows ({exc})") from None
    return mask


def folder_size(folder: Path) -> int:
    """The bytes of the files in a folder, at any depth."""
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def remove_folder(folder: Path) -> None:
    """Delete a folder and what it holds; a folder that is not there is no error."""
    try:
        shutil.rmtree(folder)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise PipelineError(f"{folder}: cannot delete it ({exc.strerror})") from None


def remove_file(path: Path) -> None:
    """Delete a file; one that is not there is no error."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise PipelineError(f"{path}: cannot delete it ({exc.strerror})") from None


def copy_file(source: Path, destination: Path) -> None:
    if not source.is_file():
        raise PipelineError(f"{source} not found")
    with atomic_path(destination) as temporary:
        shutil.copyfile(source, temporary)


def write_text(text: str, path: Path) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def sqlite_file(url: str) -> Path | None:
    """The file a `sqlite:///` URL names, made absolute (relative paths are to the working
    directory); None for any other URL."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return None
    return Path(url.removeprefix(prefix)).resolve()


def git_commit(directory: Path = Path()) -> str | None:
    """The commit checked out in `directory`, or None outside a git repository."""
    return _git(["rev-parse", "HEAD"], directory) or None


def git_dirty(directory: Path = Path()) -> bool | None:
    """Whether the work tree has changes not in that commit (untracked files count); None outside a
    git repository."""
    status = _git(["status", "--porcelain"], directory)
    return None if status is None else bool(status)


def _git(arguments: list[str], directory: Path) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    completed = subprocess.run(  # noqa: S603  # fixed arguments, no shell
        [git, *arguments], cwd=directory, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        return None
    return completed.stdout.strip()
