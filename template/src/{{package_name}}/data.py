"""Data stage: the table that `data:` in the config declares, checked at the boundary, then split.

Pure functions on frames; reading and writing files is `storage.py`'s job.

- `demo_table`: a dataset that ships with scikit-learn (wine for classification, diabetes for
  regression), so that everything works offline before a team brings its own table.
- `describe_table`: which columns are features, and of which role (numeric, categorical, datetime, ...:
  see `roles.py`), inferred from the training table; the result, a `TableSchema`, is saved with the
  model.
- `check_table`: validates a frame against a `TableSchema` with pandera, reporting every problem at once,
  one line each, naming the file and the column.
- `split`: a seeded train/test split, stratified for classification, and `Split`, which rows it held
  out, recorded with the run so that the run is only ever scored on rows it never trained on
  (`held_out_rows` finds them again, in the same table or in one that has grown since).
"""

import difflib
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from .errors import DataValidationError
from .features import FeatureKind, as_dates, as_text
from .roles import ColumnRole, infer_roles

if TYPE_CHECKING:
    from .config import DataConfig

DEMO_FILES = {
    "classification": Path("data/raw/wine.csv"),
    "regression": Path("data/raw/diabetes.csv"),
}
_SHOWN = 3  # examples shown per problem
MIN_ROWS = 2  # in each of the train and the test split


@dataclass(frozen=True)
class TableSchema:
    """What a model was trained on: saved in its metadata, checked against every table it scores."""

    target: str
    task: str
    id_columns: tuple[str, ...] = ()
    features: Mapping[str, FeatureKind] = field(default_factory=dict)
    classes: tuple[Any, ...] = ()
    # Two classes: the one whose precision, recall and probability are reported (data.positive_class)
    positive_class: Any = None
    # Columns of the training table the model leaves out, by role (identifier, constant, text, drop):
    # a table to score may hold them
    excluded: Mapping[str, str] = field(default_factory=dict)

    @property
    def binary(self) -> bool:
        return self.task == "classification" and len(self.classes) == 2

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "task": self.task,
            "id_columns": list(self.id_columns),
            "features": dict(self.features),
            "classes": list(self.classes),
            "positive_class": self.positive_class,
            "excluded": dict(self.excluded),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> "TableSchema":
        classes = tuple(raw["classes"])
        # Schemas saved before data.positive_class: the second of two classes, as they reported it.
        earlier = classes[1] if raw["task"] == "classification" and len(classes) == 2 else None
        return cls(
            target=str(raw["target"]),
            task=str(raw["task"]),
            id_columns=tuple(raw["id_columns"]),
            features=dict(raw["features"]),
            classes=classes,
            positive_class=raw.get("positive_class", earlier),
            excluded=dict(raw.get("excluded", {})),
        )


def demo_table(task: str) -> pd.DataFrame:
    """The demo dataset of a task, with its label in a column named `target`."""
    from sklearn.datasets import load_diabetes, load_wine

    if task == "classification":
        frame: pd.DataFrame = load_wine(as_frame=True).frame
    else:
        frame = load_diabetes(as_frame=True, scaled=False).frame
    return frame


def column_roles(frame: pd.DataFrame, data: "DataConfig", *, source: str) -> list[ColumnRole]:
    """The role of each candidate feature of a training table: the listed features, or every column
    but the target and the IDs (`roles.py` says how; `data.columns` overrides it)."""
    if data.features is None:
        taken = {data.target, *data.id_columns}
        names = [str(column) for column in frame.columns if column not in taken]
    else:
        names = [name for name in data.features if name in frame.columns]
    return infer_roles(frame, names, data.columns, source=source)


def describe_table(
    frame: pd.DataFrame, data: "DataConfig", roles: list[ColumnRole] | None = None
) -> TableSchema:
    """The schema `data` declares for this table, with the `column_roles` of its columns: the columns
    a role leaves out are recorded apart. Call `check_table` next."""
    roles = column_roles(frame, data, source=str(data.path)) if roles is None else roles
    known = {role.column: role for role in roles}
    names = list(known) if data.features is None else list(data.features)
    kinds: dict[str, FeatureKind] = {}
    for name in names:
        role = known.get(name)
        if role is None:  # listed but absent: `check_table` names it
            kinds[name] = "numeric"
        elif role.used:
            kinds[name] = role.role  # type: ignore[assignment]  # a used role is a feature kind
    excluded = {role.column: role.role for role in roles if not role.used}
    return TableSchema(
        target=data.target,
        task=data.task,
        id_columns=data.id_columns,
        features=kinds,
        excluded=excluded,
    )


# Largest magnitude a numeric value may have: squares and sums of larger ones overflow float64.
MAX_MAGNITUDE = 1e150


def check_table(
    frame: pd.DataFrame,
    schema: TableSchema,
    *,
    source: str,
    labelled: bool = True,
    ignore_extra: bool = False,
) -> pd.DataFrame:
    """`frame` with the schema's columns (IDs, features, then the target when `labelled`), numeric
    features as floats, dates as dates in UTC. Every problem is reported at once, one line each; the
    first names `source`.

    Training tables (`labelled`) need a target in every row, and a value in every feature column.
    Tables to score may carry the target column (it is left out) and, with `ignore_extra`, other columns.
    """
    import pandera.pandas as pa
    from pandera.errors import SchemaErrors

    if frame.empty:
        raise DataValidationError(f"{source}: the table has no rows")
    finite = pa.Check(
        lambda values: ~(np.abs(pd.to_numeric(values, errors="coerce")) > MAX_MAGNITUDE),
        ignore_na=True,
        error=f"values infinite or beyond ±{MAX_MAGNITUDE:g}",
    )
    not_empty = pa.Check(lambda values: values.notna().any(), error="no values at all")
    dates = pa.Check(
        lambda values: as_dates(values).notna() | values.isna(), error="not a date or time"
    )
    plain = _plain_numbers(frame, schema, labelled)
    columns = {name: pa.Column(nullable=True) for name in schema.id_columns}
    columns |= {name: pa.Column(nullable=True, required=False) for name in schema.excluded}
    for name, kind in schema.features.items():
        checks = [not_empty] if labelled else []
        if name in plain:
            continue
        if kind == "numeric":
            columns[name] = pa.Column(float, coerce=True, nullable=True, checks=[finite, *checks])
        elif kind == "datetime":
            columns[name] = pa.Column(nullable=True, checks=[dates, *checks])
        else:
            columns[name] = pa.Column(nullable=True, checks=checks)
    if labelled and schema.task == "regression":
        columns[schema.target] = pa.Column(float, coerce=True, checks=[finite])
    elif labelled:
        columns[schema.target] = pa.Column()
    else:
        columns[schema.target] = pa.Column(required=False, nullable=True)
    strict: bool | str = "filter" if labelled or ignore_extra else True
    try:
        checked: pd.DataFrame = pa.DataFrameSchema(columns, strict=strict).validate(
            frame.drop(columns=plain), lazy=True
        )
    except SchemaErrors as errors:
        report = _report(errors.failure_cases, schema, source, [str(name) for name in frame])
        raise DataValidationError(report) from None
    target = checked[schema.target] if labelled else None
    if target is not None and schema.task == "classification" and _looks_continuous(target):
        raise DataValidationError(
            f"{source}: column '{schema.target}' (the target) holds {target.nunique()} distinct "
            "numbers, not classes: for a number to predict, set data.task: regression"
        )
    if target is not None and schema.task == "classification" and target.nunique() < 2:
        raise DataValidationError(
            f"{source}: column '{schema.target}' (the target) holds a single class: "
            "classification needs two or more (for a number to predict, set data.task: regression)"
        )
    order = [*schema.id_columns, *schema.features, *([schema.target] if labelled else [])]
    # Read as dates once, here: the hashes, the features and the reports take them as they are.
    read = {
        name: as_dates(checked[name])
        for name, kind in schema.features.items()
        if kind == "datetime"
    }
    if plain:  # one block of floats, beside pandera's columns
        checked = pd.concat([checked, frame[plain].astype("float64")], axis=1)
    return checked[order].assign(**read)


# Numeric columns checked together, this many at a time (a block of floats per row).
PLAIN_BLOCK = 256


def _plain_numbers(frame: pd.DataFrame, schema: TableSchema, labelled: bool) -> list[str]:
    """The numeric feature columns that pass their checks as they are: numbers already, none
    beyond MAX_MAGNITUDE, and (to train on) not all missing. They are checked a block of columns at
    a time here; pandera checks the others, column by column (seconds on thousands of columns),
    and words any problem."""
    types = frame.dtypes  # once: a column looked up by name costs more than its check, on few rows
    numbers = [
        name
        for name, kind in schema.features.items()
        if kind == "numeric"
        and name in types
        and pd.api.types.is_numeric_dtype(types[name])
        and not pd.api.types.is_bool_dtype(types[name])
    ]
    plain = []
    for start in range(0, len(numbers), PLAIN_BLOCK):
        block = numbers[start : start + PLAIN_BLOCK]
        values = frame[block].to_numpy(dtype="float64", na_value=np.nan)
        passes = ~(np.abs(values) > MAX_MAGNITUDE).any(axis=0)
        if labelled:
            passes &= ~np.isnan(values).all(axis=0)
        plain += [name for name, ok in zip(block, passes, strict=True) if ok]
    return plain


def with_classes(
    schema: TableSchema, frame: pd.DataFrame, positive: str | int | bool | None = None
) -> TableSchema:
    """The schema with the classes of a checked training table (classification only) and, for two
    classes, the positive one: `positive` (data.positive_class) when given, else `default_positive`.
    """
    if schema.task != "classification":
        if positive is not None:
            raise DataValidationError(
                f"data.positive_class {positive!r}: a positive class is one of two classes, and "
                "this is a regression: set it to null"
            )
        return schema
    counts = frame[schema.target].value_counts()
    classes = tuple(sorted(counts.index.tolist(), key=lambda label: (str(type(label)), label)))
    chosen = None
    if positive is not None:
        matches = [label for label in classes if same_label(label, positive)]
        if len(classes) != 2 or not matches:
            shown = ", ".join(repr(label) for label in classes)
            why = "a two-class target" if len(classes) != 2 else "one of them"
            hint = " (YAML reads yes, no, on, off as booleans: quote it)" * isinstance(
                positive, bool
            )
            raise DataValidationError(
                f"data.positive_class {positive!r}{hint}: column '{schema.target}' holds the classes "
                f"{shown}; give {why}, or null"
            )
        chosen = matches[0]
    elif len(classes) == 2:
        chosen = default_positive(classes, [int(counts[label]) for label in classes])
    return TableSchema(
        target=schema.target,
        task=schema.task,
        id_columns=schema.id_columns,
        features=schema.features,
        classes=classes,
        positive_class=chosen,
        excluded=schema.excluded,
    )


def _label_text(label: Any) -> str:
    """A label as text, whole numbers without a fraction: 1.0 reads as 1."""
    if isinstance(label, float | np.floating) and float(label).is_integer():
        return str(int(label))
    return str(label)


# Two classes whose names say which is the event: (the negative one, the positive one).
_NAMED_PAIRS = (("0", "1"), ("false", "true"), ("no", "yes"), ("n", "y"), ("negative", "positive"))


def default_positive(classes: tuple[Any, ...], counts: list[int]) -> Any:
    """The positive class of two: 1, True, yes, positive when the names say so; otherwise the rarer
    class (the event a model is usually asked to find), the later in order on a tie."""
    named = _named_positive(classes)
    if named is not None:
        return named
    rarer = 0 if counts[0] < counts[1] else 1
    return classes[rarer]


def positive_rule(classes: tuple[Any, ...]) -> str:
    """Why `default_positive` chose as it did, in words."""
    return "its name says so" if _named_positive(classes) is not None else "the rarer class"


def same_label(label: Any, given: Any) -> bool:
    """Whether a class label is the one a config gives: numbers by value (1 is 1.0), anything else
    by its text."""
    numbers = [
        isinstance(value, int | float | np.number) and not isinstance(value, bool | np.bool_)
        for value in (label, given)
    ]
    if all(numbers):
        return bool(float(label) == float(given))
    return str(label) == str(given)


def _named_positive(classes: tuple[Any, ...]) -> Any:
    names = [_label_text(label).strip().lower() for label in classes]
    for negative, positive in _NAMED_PAIRS:
        if sorted(names) == [negative, positive]:
            return classes[names.index(positive)]
    return None


def split(
    frame: pd.DataFrame, schema: TableSchema, *, test_size: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded train/test split of a checked table, stratified by class for classification."""
    from sklearn.model_selection import train_test_split

    stratify = frame[schema.target] if schema.task == "classification" else None
    if stratify is not None:
        counts = stratify.value_counts()
        rare = [str(label) for label, count in counts.items() if count < 2]
        if rare:
            raise DataValidationError(
                f"column '{schema.target}' (the target): classes {rare} have a single row; each "
                "class needs 2 or more to be split into train and test: drop or merge them"
            )
    try:
        train, test = train_test_split(
            frame, test_size=test_size, random_state=seed, stratify=stratify
        )
    except ValueError as exc:
        first = str(exc).splitlines()[0][:200]
        raise DataValidationError(
            f"cannot split {len(frame)} rows with data.test_size {test_size}: {first}"
        ) from None
    if min(len(train), len(test)) < MIN_ROWS:
        raise DataValidationError(
            f"data.test_size {test_size} splits {len(frame)} rows into {len(train)} to train and "
            f"{len(test)} to test: each needs {MIN_ROWS} or more (more rows, or another test_size)"
        )
    return train, test


@dataclass(frozen=True)
class Split:
    """Which rows of the table a run held out, recorded with the run: the table's row count and a
    digest of those rows' values when it was split, a mask of the held-out ones, and how many of
    them repeat a training row exactly (they flatter its scores)."""

    rows: int
    digest: str
    held_out: npt.NDArray[np.bool_]
    seed: int
    test_size: float
    repeats: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "held_out_rows": int(self.held_out.sum()),
            "digest": self.digest,
            "seed": self.seed,
            "test_size": self.test_size,
            "held_out_repeating_training_rows": self.repeats,
        }


def recorded_split(
    table: pd.DataFrame, test: pd.DataFrame, schema: TableSchema, *, seed: int, test_size: float
) -> Split:
    """The `Split` of a checked table whose held-out part is `test` (as `split` returned it)."""
    held_out = np.zeros(len(table), dtype=bool)
    held_out[table.index.get_indexer(test.index)] = True
    hashes = row_hashes(table, schema)
    repeats = int(np.isin(hashes[held_out], hashes[~held_out]).sum())
    return Split(len(table), digest(hashes), held_out, seed, test_size, repeats)


def held_out_rows(
    table: pd.DataFrame,
    schema: TableSchema,
    rows: int,
    recorded: str,
    held_out: npt.NDArray[np.bool_],
) -> tuple[pd.DataFrame, int, int] | None:
    """The rows of a checked table that a run never trained on: its held-out rows, when the table's
    first `rows` rows are still the ones it was split from (their digest is `recorded`), and the
    rows added after those, but for any that repeat a training row exactly. Returns them with how
    many were added and kept, and how many added ones were left out as repeats; None when the rows
    it was split from changed: its held-out rows cannot be told from the ones it trained on."""
    if len(table) < rows or len(held_out) != rows:
        return None
    hashes = row_hashes(table, schema)
    if digest(hashes[:rows]) != recorded:
        return None
    repeats = np.isin(hashes[rows:], hashes[:rows][~held_out])
    added = rows + np.flatnonzero(~repeats)
    chosen = np.concatenate([np.flatnonzero(held_out), added])
    return table.iloc[chosen], len(added), int(repeats.sum())


def row_hashes(frame: pd.DataFrame, schema: TableSchema) -> npt.NDArray[np.uint64]:
    """A 64-bit hash of each row's features and target, of their values rather than their types:
    numbers as floats, dates in UTC, anything else as text, so a table saved again, or in another
    format, keeps its hashes."""
    kinds = dict(schema.features)
    kinds[schema.target] = "numeric" if schema.task == "regression" else "categorical"
    canonical = pd.DataFrame(
        {  # in one order, however saved
            name: _canonical(frame[name], kinds[name])
            for name in [*sorted(schema.features), schema.target]
        }
    )
    hashes = pd.util.hash_pandas_object(canonical, index=False)
    return np.asarray(hashes, dtype=np.uint64)


def _canonical(values: pd.Series, kind: str) -> Any:
    if kind == "numeric":
        return pd.to_numeric(values, errors="coerce").astype("float64")
    if kind == "datetime":
        values = as_dates(values)
    return as_text(values.to_frame())[:, 0]


def digest(hashes: npt.NDArray[np.uint64]) -> str:
    """One SHA-256 of many row hashes, in order."""
    return hashlib.sha256(np.ascontiguousarray(hashes, dtype="<u8").tobytes()).hexdigest()


def _looks_continuous(target: pd.Series) -> bool:
    """Numbers with fractions, many of them distinct: a quantity, not class labels."""
    if pd.api.types.is_bool_dtype(target) or not pd.api.types.is_float_dtype(target):
        return False
    fractional = bool((target.dropna() % 1 != 0).any())
    return fractional and target.nunique() > max(20, len(target) // 10)


def _report(failures: pd.DataFrame, schema: TableSchema, source: str, present: list[str]) -> str:
    """One line per problem (a column and a check, with a count and examples), each naming `source`.
    `present`: the table's columns, for the closest name to a missing one."""
    lines = []
    missing = failures.loc[failures["check"] == "column_in_dataframe", "failure_case"].tolist()
    if missing:
        names = [str(name) for name in missing]
        lines.append(f"missing columns {names}{_missing_hint(names, schema, present)}")
    extra = failures.loc[failures["check"] == "column_in_schema", "failure_case"].tolist()
    if extra:
        lines.append(
            f"unexpected columns {[str(name) for name in extra]}: the model was not trained on "
            "them (drop them, or pass --ignore-extra)"
        )
    per_column = failures[failures["column"].notna()]
    converted = set(per_column.loc[per_column["check"].str.startswith("coerce_dtype"), "column"])
    for (column, name), group in per_column.groupby(["column", "check"], sort=False):
        check = str(name)
        if check.startswith("dtype(") and column in converted:
            continue  # the same values as the failed conversion to numbers
        role = " (the target)" if column == schema.target else ""
        count = len(group)
        rows = [str(int(index) + 1) for index in group["index"].dropna()[:_SHOWN]]
        where = ""
        if rows:
            where = f" ({'row' if count == 1 else 'rows'} {', '.join(rows)}"
            where += ", ...)" if count > _SHOWN else ")"
        if check == "not_nullable":
            problem = f"{_rows(count)} {'has' if count == 1 else 'have'} no value{where}"
        elif check.startswith(("coerce_dtype", "dtype(")):
            examples = ", ".join(repr(value) for value in group["failure_case"][:_SHOWN])
            problem = f"not a number in {_rows(count)}, e.g. {examples}{where}"
            if role and schema.task == "regression":
                problem += " (to predict classes, set data.task: classification)"
        elif check == "no values at all":
            problem = "has no values at all: fill it, or list data.features without it"
        else:
            examples = ", ".join(repr(value) for value in group["failure_case"][:_SHOWN])
            problem = f"{check} in {_rows(count)}, e.g. {examples}{where}"
        lines.append(f"column '{column}'{role}: {problem}")
    return "\n".join(f"{source}: {line}" for line in lines)


def _missing_hint(names: list[str], schema: TableSchema, present: list[str]) -> str:
    """Which setting names each missing column, and the table's closest column name to it."""
    hints = []
    for name in names:
        setting = (
            "data.target"
            if name == schema.target
            else "data.id_columns" if name in schema.id_columns else None
        )
        close = difflib.get_close_matches(name, present, n=1)
        said = [f"set in {setting}"] if setting else []
        said += [f"did you mean {close[0]!r}?"] if close else []
        if said:
            hints.append(f"{name!r}: {', '.join(said)}")
    return f" ({'; '.join(hints)})" if hints else ""


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"
