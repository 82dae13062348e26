"""Experiments: list, filter, sort and compare recorded runs.

Pure functions on run records (as `tracking.Run.record` builds them and `tracking.read_runs` reads them
back, with their real types). A record flattens to keys such as `run_id`, `run_name`, `time`,
`params.model.max_depth`, `metrics.model.f1_macro` and `tags.dirty`, which the filter language compares:

    params.model.max_depth > 5 and metrics.model.f1_macro >= 0.9
    params.data.path = "data/raw/x.csv" or not tags.dirty = true

Operators: `=` (or `==`), `!=`, `<`, `<=`, `>`, `>=`; values: numbers, quoted text, `true`, `false`,
`null`; `and`, `or`, `not` and parentheses. Numbers compare as numbers, text as text.
"""

import difflib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from .errors import PipelineError
from .evaluate import BINARY_PRIMARY_METRIC, PRIMARY_METRIC

Record = Mapping[str, Any]
Predicate = Callable[[Mapping[str, Any]], bool]

SECTIONS = ("params", "metrics", "tags")
ATTRIBUTES = ("run_id", "run_name", "time", "experiment")

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?(?![\w.]))
      | (?P<text>"[^"]*"|'[^']*')
      | (?P<op>==|!=|<=|>=|=|<|>)
      | (?P<paren>[()])
      | (?P<word>[A-Za-z_][\w.\-/]*)
    )""",
    re.VERBOSE,
)
_WORDS = {"true": True, "false": False, "null": None}


class FilterError(PipelineError):
    """A filter expression that cannot be read or does not fit the recorded runs."""


def flat(record: Record) -> dict[str, Any]:
    """One record as flat keys: `run_id`, `params.model.max_depth`, `metrics.model.r2`, `tags.dirty`."""
    result = {name: record.get(name) for name in ATTRIBUTES}
    for section in SECTIONS:
        for key, value in (record.get(section) or {}).items():
            result[f"{section}.{key}"] = value
    return result


def parse_filter(expression: str, records: Sequence[Record]) -> Predicate:
    """A predicate over flat records; an unknown key or a comparison of the wrong type is an error."""
    return _parse(expression, _kinds([flat(record) for record in records]))


def _parse(expression: str, known: Mapping[str, str]) -> Predicate:
    tokens = _tokenize(expression)
    parser = _Parser(tokens, known, expression)
    predicate = parser.expression()
    if parser.position < len(tokens):
        raise FilterError(f"filter: unexpected {tokens[parser.position][1]!r} in {expression!r}")
    return predicate


def select(
    records: Sequence[Record],
    *,
    expression: str | None = None,
    sort: str | None = None,
    limit: int | None = None,
) -> list[Record]:
    """Records matching `expression`, newest first or sorted by `KEY` (`KEY:desc` for descending),
    at most `limit` of them."""
    rows = [(record, flat(record)) for record in records]  # each record flattened once
    known = _kinds(row for _, row in rows)
    if expression is not None:
        predicate = _parse(expression, known)
        rows = [(record, row) for record, row in rows if predicate(row)]
    if sort:
        key, _, direction = sort.partition(":")
        if direction not in ("", "asc", "desc"):
            raise FilterError(f"--sort {sort}: the direction is asc or desc, e.g. {key}:desc")
        _known_key(key, known, f"--sort {sort}")
        present = [pair for pair in rows if pair[1].get(key) is not None]
        absent = [pair for pair in rows if pair[1].get(key) is None]
        present.sort(key=lambda pair: _sortable(pair[1][key]), reverse=direction == "desc")
        chosen = [record for record, _ in present + absent]
    else:  # newest first; runs recorded within the same second keep their recorded order, reversed
        order = sorted(enumerate(rows), key=lambda item: (str(item[1][1].get("time", "")), item[0]))
        chosen = [record for _, (record, _) in reversed(order)]
    return chosen[:limit] if limit is not None else chosen


def _sortable(value: Any) -> tuple[int, Any]:
    """Numbers by value, then anything else by its text: a key whose runs recorded values of
    different types (a number in one, text in another) still sorts."""
    if isinstance(value, int | float):
        return (0, value)
    return (1, str(value))


def find(records: Sequence[Record], run_id: str) -> Record:
    """The one record whose run id starts with `run_id` (at least 4 characters)."""
    run_id = run_id.lower()
    if len(run_id) < 4:
        raise PipelineError(f"run id {run_id!r}: give at least its first 4 characters")
    matches = [r for r in records if str(r.get("run_id", "")).startswith(run_id)]
    if not matches:
        raise PipelineError(f"no run {run_id!r} in this experiment: `runs` lists them")
    if len(matches) > 1:
        raise PipelineError(f"run id {run_id!r} is ambiguous: give more of it")
    return matches[0]


def differing_params(records: Sequence[Record]) -> list[str]:
    """The param keys whose values are not the same in every record."""
    rows = [flat(record) for record in records]
    keys = sorted({key for row in rows for key in row if key.startswith("params.")})
    return [key for key in keys if len({repr(row.get(key)) for row in rows}) > 1]


def summary_columns(records: Sequence[Record], *, max_params: int = 4) -> list[str]:
    """The columns of the runs table: identity, the params that differ, model and baseline metrics."""
    rows = [flat(record) for record in records]
    task = next((row.get("tags.task") for row in rows if row.get("tags.task")), "classification")
    metrics = sorted({key for row in rows for key in row if key.startswith("metrics.model.")})
    binary = f"metrics.model.{BINARY_PRIMARY_METRIC}" in metrics  # two classes: see primary_metric
    primary = BINARY_PRIMARY_METRIC if binary else PRIMARY_METRIC.get(str(task), "")
    baseline = [f"metrics.baseline.{primary}"] if primary else []
    return [
        "run_id",
        "run_name",
        "time",
        *differing_params(records)[:max_params],
        *metrics,
        *baseline,
    ]


def as_rows(records: Sequence[Record], columns: Sequence[str]) -> list[dict[str, Any]]:
    return [{column: flat(record).get(column) for column in columns} for record in records]


def text_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """An aligned plain-text table; run ids shortened to 8 characters, numbers to 4 decimals."""
    cells = [[_cell(column, row.get(column)) for column in columns] for row in rows]
    headers = [column.removeprefix("params.").removeprefix("metrics.") for column in columns]
    widths = [
        max([len(header)] + [len(line[i]) for line in cells]) for i, header in enumerate(headers)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in cells
    ]
    return "\n".join(lines)


def comparison(records: Sequence[Record]) -> tuple[list[str], list[dict[str, Any]]]:
    """Runs side by side: one row per param that differs and per metric, one column per run."""
    rows = [flat(record) for record in records]
    metrics = sorted({key for row in rows for key in row if key.startswith("metrics.")})
    names = [str(row["run_name"] or str(row["run_id"])[:8]) for row in rows]
    table = [
        {"key": key, **{name: row.get(key) for name, row in zip(names, rows, strict=True)}}
        for key in [*differing_params(records), *metrics]
    ]
    return ["key", *names], table


def _cell(column: str, value: Any) -> str:
    if value is None:
        return "-"
    if column == "run_id":
        return str(value)[:8]
    if column == "time":
        return str(value)[:16].replace("T", " ")
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


MAX_TOKENS = 300  # a filter longer than this is a mistake, and deep nesting would exhaust the stack


def _tokenize(expression: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    text = expression.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise FilterError(f"filter: cannot read {text[position:].strip()!r} in {expression!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    if not tokens:
        raise FilterError("filter: the expression is empty")
    if len(tokens) > MAX_TOKENS:
        raise FilterError(f"filter: {len(tokens)} words and symbols, {MAX_TOKENS} at most")
    return tokens


def _kinds(rows: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Each key seen in the records, with the kind of its values: number, text, bool or none."""
    kinds: dict[str, str] = {}
    for row in rows:
        for key, value in row.items():
            kind = _kind(value)
            if kinds.get(key, "none") == "none":
                kinds[key] = kind
    return kinds


def _kind(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "text"


def _known_key(key: str, known: Mapping[str, str], context: str) -> str:
    if key in known:
        return known[key]
    if not (key in ATTRIBUTES or key.split(".", 1)[0] in SECTIONS):
        prefixed = [f"{section}.{key}" for section in SECTIONS if f"{section}.{key}" in known]
        hint = f" (did you mean {prefixed[0]}?)" if prefixed else ""
        raise FilterError(
            f"{context}: {key!r} is not a key: keys start with params., metrics. or tags.{hint}"
        )
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f": did you mean {close[0]}?" if close else " in any recorded run"
    raise FilterError(f"{context}: unknown key {key}{hint}")


class _Parser:
    """Recursive descent: or-expressions of and-expressions of [not] comparisons or (groups)."""

    def __init__(self, tokens: list[tuple[str, str]], known: Mapping[str, str], text: str) -> None:
        self.tokens, self.known, self.text, self.position = tokens, known, text, 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise FilterError(f"filter: {self.text!r} ends too early")
        self.position += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token[0] == "word" and token[1].lower() == word:
            self.position += 1
            return True
        return False

    def expression(self) -> Predicate:
        left = self.conjunction()
        while self.keyword("or"):
            right = self.conjunction()
            left = _either(left, right)
        return left

    def conjunction(self) -> Predicate:
        left = self.negation()
        while self.keyword("and"):
            right = self.negation()
            left = _both(left, right)
        return left

    def negation(self) -> Predicate:
        if self.keyword("not"):
            inner = self.negation()
            return lambda row: not inner(row)
        if self.peek() == ("paren", "("):
            self.take()
            inner = self.expression()
            if self.peek() != ("paren", ")"):
                raise FilterError(f"filter: a ')' is missing in {self.text!r}")
            self.take()
            return inner
        return self.comparison()

    def comparison(self) -> Predicate:
        kind, key = self.take()
        if kind != "word" or key.lower() in _WORDS:
            raise FilterError(f"filter: expected a key such as params.model.max_depth, got {key!r}")
        key_kind = _known_key(key, self.known, "filter")
        op_kind, op = self.take()
        if op_kind != "op":
            raise FilterError(f"filter: expected =, !=, <, <=, > or >= after {key}, got {op!r}")
        value = self.value()
        _check_types(key, key_kind, op, value)
        return _compare(key, "=" if op == "==" else op, value)

    def value(self) -> Any:
        kind, text = self.take()
        if kind == "number":
            number = float(text)
            return (
                int(number)
                if number.is_integer() and "." not in text and "e" not in text.lower()
                else number
            )
        if kind == "text":
            return text[1:-1]
        if kind == "word" and text.lower() in _WORDS:
            return _WORDS[text.lower()]
        raise FilterError(
            f'filter: expected a value (a number, "text", true, false or null), got {text!r}'
        )


def _check_types(key: str, key_kind: str, op: str, value: Any) -> None:
    value_kind = _kind(value)
    if value_kind == "none" or key_kind == "none":
        if op not in ("=", "==", "!=") and value_kind == "none":
            raise FilterError(f"filter: {key} {op} null: null compares only with = or !=")
        return
    if key_kind != value_kind:
        example = {"number": "5", "text": '"text"', "bool": "true"}[key_kind]
        raise FilterError(
            f"filter: {key} holds {key_kind} values, not {value_kind}: compare it with a "
            f"{key_kind} such as {key} = {example}"
        )
    if key_kind == "bool" and op not in ("=", "==", "!="):
        raise FilterError(f"filter: {key} is true or false: compare it with = or !=")


def _compare(key: str, op: str, value: Any) -> Predicate:
    def predicate(row: Mapping[str, Any]) -> bool:
        actual = row.get(key)
        if op == "=":
            return bool(actual == value)
        if op == "!=":
            return bool(actual != value)
        if actual is None or _kind(actual) != _kind(value):
            return False
        return bool(
            {
                "<": actual < value,
                "<=": actual <= value,
                ">": actual > value,
                ">=": actual >= value,
            }[op]
        )

    return predicate


def _both(left: Predicate, right: Predicate) -> Predicate:
    return lambda row: left(row) and right(row)


def _either(left: Predicate, right: Predicate) -> Predicate:
    return lambda row: left(row) or right(row)
