"""Data stage: get the raw dataset, validate frames at the boundary, split them.

The dataset is scikit-learn's copy of the UCI wine recognition data (178 wines, 13 chemical measurements,
3 cultivars): it ships inside the package, so every command works offline. To use your own data, change
`load_raw_dataset` and `FEATURES`/`TARGET`; the rest of the pipeline follows the schema.
"""

import hashlib
from pathlib import Path

import pandas as pd
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split

from .errors import DataValidationError

TARGET = "target"
FEATURES: tuple[str, ...] = (
    "alcohol",
    "malic_acid",
    "ash",
    "alcalinity_of_ash",
    "magnesium",
    "total_phenols",
    "flavanoids",
    "nonflavanoid_phenols",
    "proanthocyanins",
    "color_intensity",
    "hue",
    "od280/od315_of_diluted_wines",
    "proline",
)


def load_raw_dataset() -> pd.DataFrame:
    """The raw dataset as one frame: the feature columns and the integer class in `target`."""
    bunch = load_wine(as_frame=True)
    frame: pd.DataFrame = bunch.frame
    return frame


def validate(frame: pd.DataFrame, *, labelled: bool = True) -> pd.DataFrame:
    """Check a frame against the schema and return its columns in schema order.

    Features must all be present and numeric; with `labelled`, the target must be present, integer and
    complete. An unlabelled frame may still carry the target column: it is dropped.
    """
    if frame.empty:
        raise DataValidationError("the data has no rows")
    expected = [*FEATURES, TARGET] if labelled else list(FEATURES)
    missing = [column for column in expected if column not in frame.columns]
    unexpected = [column for column in frame.columns if column not in (*FEATURES, TARGET)]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing columns {missing}")
        if unexpected:
            parts.append(f"unexpected columns {unexpected}")
        raise DataValidationError("the data does not match the schema: " + ", ".join(parts))
    non_numeric = [
        column for column in FEATURES if not pd.api.types.is_numeric_dtype(frame[column])
    ]
    if non_numeric:
        raise DataValidationError(f"feature columns must be numeric: {non_numeric}")
    if labelled:
        target = frame[TARGET]
        if target.isna().any():
            raise DataValidationError(f"the target column '{TARGET}' has missing values")
        if not pd.api.types.is_integer_dtype(target):
            raise DataValidationError(f"the target column '{TARGET}' must hold integer classes")
    return frame[expected].copy()


def split(frame: pd.DataFrame, *, test_size: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A stratified, seeded train/test split of a labelled frame."""
    train: pd.DataFrame
    test: pd.DataFrame
    train, test = train_test_split(
        frame, test_size=test_size, random_state=seed, stratify=frame[TARGET]
    )
    return train, test


def read_csv(path: Path, *, labelled: bool = True) -> pd.DataFrame:
    """Read a CSV file and validate it; a missing file is a `DataValidationError` with the fix."""
    if not path.is_file():
        raise DataValidationError(f"{path} not found: run `make data` (or `make train`) first")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataValidationError(f"{path}: not a readable CSV file ({exc})") from None
    try:
        return validate(frame, labelled=labelled)
    except DataValidationError as exc:
        raise DataValidationError(f"{path}: {exc}") from None


def fingerprint(path: Path) -> str:
    """SHA-256 of a file's bytes: which data a model was trained on."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
