"""Column roles: what each column of a training table is to the model, inferred from its values,
overridden by `data.columns`, reported before fitting and recorded with the model.

The rules, in order, for each column that is not the target or an ID column:

- `data.columns` names its role: numeric, categorical, datetime, text or drop;
- no values, or the same value in every row: constant (left out);
- booleans: categorical; dates and timestamps, in any time zone: datetime;
- numbers (floats, integers, nullable integers, decimals): numeric, but whole numbers that count the
  rows (0, 1, 2, ... in some order, 20 rows or more): identifier (left out);
- text that is all numbers: numeric; 80 % numbers or more but for up to 3 other values (e.g. `?`):
  an error naming them, to list in `data.na_values`;
- text that is all ISO 8601 dates (2024-03-01, 2024-03-01T12:00:00+01:00): datetime;
- text of 4 or more words, mostly distinct: text (left out unless `data.columns` declares it);
- text with a different value in every row (20 rows or more): identifier (left out);
- other text: categorical, or high_cardinality beyond 20 levels.

How each role is encoded is `features.py`'s job.
"""

import decimal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import pandas as pd

from .errors import DataValidationError

if TYPE_CHECKING:
    from .config import DeclaredRole

Role = Literal[
    "numeric",
    "categorical",
    "high_cardinality",
    "datetime",
    "text",
    "identifier",
    "constant",
    "drop",
]

MAX_LEVELS = 20  # categories one-hot encoded; more levels are target encoded
MIN_ID_ROWS = 20  # fewer rows than this, and a distinct value per row says nothing
NUMBERS_SHARE = 0.8  # of a text column's values, from which the others are taken for missing
TEXT_WORDS = 4  # median words per value from which distinct text is free text
_SAMPLE = 1_000  # values looked at before a whole column is parsed
_ISO_DATE = r"^\d{4}-\d{2}-\d{2}"


@dataclass(frozen=True)
class ColumnRole:
    """One column's role, whether the model uses it, and why."""

    column: str
    role: Role
    used: bool
    distinct: int
    missing: float  # share of the rows without a value
    why: str

    def to_json(self) -> dict[str, object]:
        return {
            "column": self.column,
            "role": self.role,
            "used": self.used,
            "distinct": self.distinct,
            "missing": round(self.missing, 4),
            "why": self.why,
        }


def infer_roles(
    frame: pd.DataFrame,
    columns: Iterable[str],
    declared: Mapping[str, "DeclaredRole"],
    *,
    source: str,
) -> list[ColumnRole]:
    """The role of each of `columns` of a training table; numbers spoilt by a few other values are
    reported all at once, one line each naming `source` and the column."""
    roles, problems = [], []
    for name in columns:
        try:
            roles.append(column_role(frame[name], declared.get(name)))
        except DataValidationError as exc:
            problems.append(f"{source}: column '{name}': {exc}")
    if problems:
        raise DataValidationError("\n".join(problems))
    return roles


def column_role(column: pd.Series, declared: "DeclaredRole | None" = None) -> ColumnRole:
    """The role of one column (see the module's rules)."""
    name, rows = str(column.name), len(column)
    present = column.dropna()
    distinct = int(present.nunique())
    missing = 1.0 - len(present) / rows if rows else 0.0

    def role(kind: Role, why: str, used: bool = True) -> ColumnRole:
        return ColumnRole(name, kind, used, distinct, missing, why)

    if declared == "drop":
        return role("drop", "data.columns says drop", used=False)
    if declared in ("numeric", "datetime", "text"):
        return role(declared, "data.columns says so")
    if declared == "categorical":
        return role(*_category(distinct, "data.columns says so"))
    if distinct <= 1:
        what = "no values" if distinct == 0 else "one value in every row"
        return role("constant", f"{what}: nothing to learn from", used=False)
    if pd.api.types.is_bool_dtype(column):
        return role("categorical", "true or false")
    if pd.api.types.is_datetime64_any_dtype(column):
        return role("datetime", "dates or timestamps")
    if pd.api.types.is_numeric_dtype(column) or _all_decimals(present):
        if _counts_rows(column, distinct):
            return role(
                "identifier", _ID_HINT.format(what="whole numbers counting the rows"), False
            )
        return role("numeric", "numbers")
    text = present.astype(str).str.strip()
    if _numbers_but(text):
        return role("numeric", "text of numbers")
    if _iso_dates(text):
        return role("datetime", "ISO 8601 dates")
    if distinct > len(present) / 2 and _median_words(text) >= TEXT_WORDS:
        return role(
            "text",
            f"free text (a median of {TEXT_WORDS}+ words): left out; declare it in data.columns "
            f"({name}: text) to encode its most frequent words",
            used=False,
        )
    if distinct == rows >= MIN_ID_ROWS:
        return role("identifier", _ID_HINT.format(what="a different value in every row"), False)
    return role(*_category(distinct, "text or categories"))


_ID_HINT = "{what}: left out (list it in data.id_columns to pass it through to predictions)"


def _category(distinct: int, why: str) -> tuple[Role, str]:
    if distinct > MAX_LEVELS:
        return "high_cardinality", f"{why}; {distinct} levels (over {MAX_LEVELS}): target encoded"
    return "categorical", f"{why}; {distinct} levels: one-hot encoded"


def _all_decimals(present: pd.Series) -> bool:
    """Python decimals (Parquet's decimal128 read by pandas): numbers."""
    head = present.head(_SAMPLE)
    return len(head) > 0 and all(isinstance(value, decimal.Decimal) for value in head)


def _counts_rows(column: pd.Series, distinct: int) -> bool:
    """Whole numbers, one per row, that make a run without gaps: a row number or a serial ID."""
    if not pd.api.types.is_integer_dtype(column) or not distinct == len(column) >= MIN_ID_ROWS:
        return False
    return int(column.max()) - int(column.min()) + 1 == distinct


def _numbers_but(text: pd.Series) -> bool:
    """Whether text is all numbers (True); numbers but for a few other values is an error naming
    them; anything else is not numbers (False)."""
    if pd.to_numeric(text.head(_SAMPLE), errors="coerce").notna().mean() < NUMBERS_SHARE:
        return False
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().all():
        return True
    others = text[numbers.isna()]
    tokens = others.value_counts()
    if numbers.notna().mean() < NUMBERS_SHARE or len(tokens) > 3:
        return False
    shown = ", ".join(f"{token!r} ({count} rows)" for token, count in tokens.items())
    raise DataValidationError(
        f"numbers but for {shown}: list {'it' if len(tokens) == 1 else 'them'} in data.na_values "
        "if they mean missing, or declare the column in data.columns (numeric or categorical)"
    )


def _iso_dates(text: pd.Series) -> bool:
    if not text.head(_SAMPLE).str.match(_ISO_DATE).all():
        return False
    parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    return bool(parsed.notna().all())


def _median_words(text: pd.Series) -> float:
    words = text.head(_SAMPLE).str.count(r"\S+")
    return float(words.median())


_SHOWN = 4  # column names shown per role in the summary


def summary(roles: Iterable[ColumnRole]) -> list[str]:
    """The roles as a short table, a line per role: how many columns, which, and what happens to
    them (the whole table, a row per column, is the run's columns.csv)."""
    by_role: dict[Role, list[ColumnRole]] = {}
    for column in roles:
        by_role.setdefault(column.role, []).append(column)
    lines = []
    for role, members in by_role.items():
        names = ", ".join(member.column for member in members[:_SHOWN])
        if len(members) > _SHOWN:
            names += f" and {len(members) - _SHOWN} more"
        use = "" if members[0].used else " (left out)"
        lines.append(f"{role.replace('_', '-'):<16} {len(members):>5}  {names}{use}")
    return lines
