"""Feature stage: the preprocessing steps, a `ColumnTransformer` of named, replaceable steps, one per
column role (`roles.py`). Each step's width is bounded, whatever the number of rows or levels:

- numeric: missing values filled with the training median, then standardised;
- categorical (at most 20 levels): missing values become their own category, then one-hot encoded; a
  category first seen at scoring time is encoded as all zeros, not an error;
- high_cardinality (more levels): target encoded (scikit-learn's `TargetEncoder`, cross-fitted on the
  training rows so a row's own target never leaks into its code): one column per column (per class
  for more than two classes), rather than one per level;
- datetime: its calendar parts (year, month, day, weekday, hour) and days since 1970, in UTC, then as
  numbers;
- text (declared in `data.columns` only): TF-IDF of its 100 most frequent words, a step per column.

The output is dense: every model kind takes it. Swap or add a step by name, e.g.
`("log", FunctionTransformer(np.log1p))` before `scale`; models receive the output.
"""

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    StandardScaler,
    TargetEncoder,
)

from .roles import MAX_LEVELS

FeatureKind = Literal["numeric", "categorical", "high_cardinality", "datetime", "text"]
MISSING_CATEGORY = "(missing)"
DATE_PARTS = ("year", "month", "day", "weekday", "hour", "days")
TEXT_TERMS = 100  # words per text column


def as_text(frame: pd.DataFrame) -> npt.NDArray[np.object_]:
    """Categories as text, missing values as NaN: `True`, "True" and a category read back from a CSV
    file all encode alike."""
    text = frame.astype("object").astype(str).to_numpy(dtype=object)
    result: npt.NDArray[np.object_] = np.where(frame.isna().to_numpy(), np.nan, text)
    return result


def as_dates(values: pd.Series) -> pd.Series:
    """Dates and timestamps in UTC (values without a time zone are taken as UTC), from datetimes or
    text; what is not a date, numbers included, becomes NaT."""
    if pd.api.types.is_datetime64_any_dtype(values):
        dates = pd.Series(values)
        utc: pd.Series = dates.dt.tz_convert("UTC") if dates.dt.tz else dates.dt.tz_localize("UTC")
        return utc
    if pd.api.types.is_numeric_dtype(values):  # numbers are not dates (declare them numeric)
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    text = pd.Series(values, dtype="object").astype("string")
    parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    unread = parsed.isna() & text.notna()
    if unread.any():  # not ISO 8601: a declared column in another format, read value by value
        parsed[unread] = pd.to_datetime(text[unread], format="mixed", utc=True, errors="coerce")
    return parsed


def date_parts(frame: pd.DataFrame) -> npt.NDArray[np.float64]:
    """Each date column as its `DATE_PARTS`, NaN where there is no date."""
    parts = []
    for name in frame.columns:
        dates = as_dates(frame[name]).dt
        days = (dates.tz_localize(None) - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
        parts += [dates.year, dates.month, dates.day, dates.day_of_week, dates.hour, days]
    return np.column_stack([np.asarray(part, dtype=np.float64) for part in parts])


def date_part_names(_: Any, columns: Sequence[str]) -> list[str]:
    return [f"{name}_{part}" for name in columns for part in DATE_PARTS]


def text_values(values: pd.Series) -> pd.Series:
    """One text column as strings, missing values empty."""
    return pd.Series(values, dtype="object").fillna("").astype(str)


def prefixed(column: str, _: Any, names: Sequence[str]) -> list[str]:
    return [f"{column}_{name}" for name in names]


def one_text(_: Any, __: Any) -> list[str]:
    return ["text"]


def build_preprocessor(
    feature_kinds: Mapping[str, FeatureKind], *, task: str = "classification", seed: int = 0
) -> ColumnTransformer:
    """The steps for these columns, in this order; other columns are dropped."""

    def of(kind: str) -> list[str]:
        return [name for name, known in feature_kinds.items() if known == kind]

    def categories() -> list[tuple[str, Any]]:
        return [
            ("as_text", FunctionTransformer(as_text, feature_names_out="one-to-one")),
            ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)),
        ]

    steps: list[tuple[str, Any, Any]] = [
        (
            "numeric",
            Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
            of("numeric"),
        ),
        (
            "categorical",
            Pipeline(
                [
                    *categories(),
                    (
                        "encode",
                        OneHotEncoder(
                            handle_unknown="ignore",
                            sparse_output=False,
                            max_categories=MAX_LEVELS,
                        ),
                    ),
                ]
            ),
            of("categorical"),
        ),
    ]
    if of("high_cardinality"):
        from sklearn.model_selection import KFold, StratifiedKFold

        folds = KFold if task == "regression" else StratifiedKFold
        encoder = TargetEncoder(
            target_type="continuous" if task == "regression" else "auto",
            cv=folds(5, shuffle=True, random_state=seed),
        )
        steps.append(
            (
                "high_cardinality",
                Pipeline([*categories(), ("encode", encoder)]),
                of("high_cardinality"),
            )
        )
    if of("datetime"):
        parts = FunctionTransformer(date_parts, feature_names_out=date_part_names)
        steps.append(
            (
                "datetime",
                Pipeline(
                    [
                        ("parts", parts),
                        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                        ("scale", StandardScaler()),
                    ]
                ),
                of("datetime"),
            )
        )
    for column in of("text"):
        words = TfidfVectorizer(max_features=TEXT_TERMS, dtype=np.float32)
        named = FunctionTransformer(feature_names_out=partial(prefixed, column), accept_sparse=True)
        steps.append(
            (
                f"text_{column}",
                Pipeline(
                    [
                        ("as_text", FunctionTransformer(text_values, feature_names_out=one_text)),
                        ("words", words),
                        ("name", named),
                    ]
                ),
                column,  # one column, as a vector of strings
            )
        )
    return ColumnTransformer(
        steps, remainder="drop", sparse_threshold=0.0, verbose_feature_names_out=False
    )
