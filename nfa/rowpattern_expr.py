"""Typed expressions of row pattern recognition and their evaluator.

The SQL front end compiles DEFINE conditions and MEASURES into these nodes; `nfa` never sees
SQL text. Evaluation is a tree walk over Python values (None is SQL NULL), relative to a
`Frame` (the partition's rows and one match, complete or in progress) and a *focus* row:
`Col` and `Classifier` read the focus row; `Nav` and `Agg` move the focus.

Navigation follows the standard (and Trino): `Nav` first picks a row among the match rows
mapped to `labels` (None: every match row) — the `logical_offset`-th from the last (LAST) or
from the first (FIRST), looking only up to the current row unless `final` — then moves
`physical_offset` rows through the partition (PREV < 0 < NEXT), leaving the match if need be.
A plain `A.x` compiles to `Nav(Col x, {A}, last)`, and a plain `x` to the same over every row.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

Value = object


class RType(enum.Enum):
    BOOLEAN = "boolean"
    BIGINT = "bigint"
    DOUBLE = "double"
    VARCHAR = "varchar"
    ARRAY = "array"
    UNKNOWN = "unknown"


class RowPatternError(Exception):
    """A run-time failure of a row pattern query (division by zero, failed AFTER MATCH SKIP)."""


@dataclass(frozen=True, slots=True)
class Const:
    value: Value
    type: RType


@dataclass(frozen=True, slots=True)
class Col:
    """A column of the focus row."""

    index: int
    type: RType


@dataclass(frozen=True, slots=True)
class Classifier:
    """The pattern variable the focus row is mapped to (NULL outside the match)."""

    type: RType = RType.VARCHAR


@dataclass(frozen=True, slots=True)
class MatchNumber:
    type: RType = RType.BIGINT


@dataclass(frozen=True, slots=True)
class Nav:
    expr: RExpr
    labels: frozenset[int] | None
    last: bool
    logical_offset: int
    physical_offset: int
    final: bool
    type: RType


@dataclass(frozen=True, slots=True)
class Agg:
    """An aggregate over the match rows mapped to `labels` (running unless `final`)."""

    func: str
    args: tuple[RExpr, ...]
    labels: frozenset[int] | None
    final: bool
    type: RType


@dataclass(frozen=True, slots=True)
class Call:
    """An operator or scalar function; `and`, `or`, `if` and `coalesce` are lazy."""

    op: str
    args: tuple[RExpr, ...]
    type: RType


RExpr = Const | Col | Classifier | MatchNumber | Nav | Agg | Call


@dataclass(frozen=True, slots=True)
class Frame:
    """One match seen from one row: `labels[i]` maps row `start + i`; `current` bounds RUNNING."""

    rows: Sequence[Sequence[Value]]
    start: int
    labels: Sequence[int]
    current: int
    match_number: int
    names: Sequence[str]

    def match_rows(self, final: bool) -> range:
        end = self.start + len(self.labels) - 1 if final else self.current
        return range(self.start, end + 1)


def reads_history(expr: RExpr) -> bool:
    """Whether the value can depend on how earlier rows were mapped (not only on the rows).

    Conditions that do not let the matcher merge threads that reach the same instruction
    at the same row, which keeps patterns such as `(A+)+ B` linear instead of exponential.
    """
    if isinstance(expr, Agg | Classifier):
        return True
    if isinstance(expr, Nav):
        moved = expr.labels is not None or not expr.last or expr.logical_offset != 0
        return moved or reads_history(expr.expr)
    if isinstance(expr, Call):
        return any(reads_history(a) for a in expr.args)
    return False


def evaluate(expr: RExpr, frame: Frame, focus: int) -> Value:
    """The value of `expr` with `focus` as the row that columns and CLASSIFIER() read."""
    if isinstance(expr, Const):
        return expr.value
    if isinstance(expr, Col):
        return frame.rows[focus][expr.index]
    if isinstance(expr, Classifier):
        i = focus - frame.start
        return frame.names[frame.labels[i]] if 0 <= i < len(frame.labels) else None
    if isinstance(expr, MatchNumber):
        return frame.match_number
    if isinstance(expr, Nav):
        target = _navigate(expr, frame)
        return None if target is None else evaluate(expr.expr, frame, target)
    if isinstance(expr, Agg):
        return _aggregate(expr, frame)
    return _call(expr, frame, focus)


def _rows_of(labels: frozenset[int] | None, frame: Frame, final: bool) -> list[int]:
    rows = frame.match_rows(final)
    if labels is None:
        return list(rows)
    return [r for r in rows if frame.labels[r - frame.start] in labels]


def _navigate(nav: Nav, frame: Frame) -> int | None:
    rows = _rows_of(nav.labels, frame, nav.final)
    k = nav.logical_offset
    if k >= len(rows):
        return None
    target = rows[-1 - k] if nav.last else rows[k]
    target += nav.physical_offset
    return target if 0 <= target < len(frame.rows) else None


def _aggregate(agg: Agg, frame: Frame) -> Value:
    rows = _rows_of(agg.labels, frame, agg.final)
    columns = [[evaluate(a, frame, r) for r in rows] for a in agg.args]
    func = agg.func
    if func == "count":
        return len(rows) if not columns else sum(v is not None for v in columns[0])
    if func == "array_agg":
        return list(columns[0])
    if func in ("max_by", "min_by"):
        pairs = [(k, v) for v, k in zip(columns[0], columns[1], strict=True) if k is not None]
        if not pairs:
            return None
        pick = max if func == "max_by" else min
        return pick(pairs, key=lambda p: _Key(p[0]))[1]
    values = [v for v in columns[0] if v is not None]
    if not values:
        return None
    if func == "sum":
        return sum(values)  # type: ignore[arg-type]
    if func == "avg":
        return sum(values) / len(values)  # type: ignore[arg-type]
    if func == "min":
        return min(values)  # type: ignore[type-var]
    if func == "max":
        return max(values)  # type: ignore[type-var]
    if func == "bool_and":
        return all(values)
    if func == "bool_or":
        return any(values)
    if func == "arbitrary":
        return values[0]
    raise RowPatternError(f"unknown aggregate {func}")


class _Key:
    """Orders arbitrary SQL values (same-typed at run time) for max_by / min_by."""

    def __init__(self, value: Value):
        self.value = value

    def __lt__(self, other: _Key) -> bool:
        return bool(self.value < other.value)  # type: ignore[operator]

    def __gt__(self, other: _Key) -> bool:
        return bool(self.value > other.value)  # type: ignore[operator]


def _truth(value: Value) -> bool | None:
    return None if value is None else bool(value)


def _call(expr: Call, frame: Frame, focus: int) -> Value:
    op, args = expr.op, expr.args
    if op in ("and", "or"):
        # SQL fixes no evaluation order: an operand that decides the result alone wins even
        # when another operand fails (`x / 0 > 0 AND false` is false), as after Trino's
        # simplification.
        stop = op == "or"
        unknown, failure = False, None
        for arg in args:
            try:
                value: bool | None = _truth(evaluate(arg, frame, focus))
            except RowPatternError as exc:
                failure = exc
                continue
            if value is stop:
                return stop
            unknown |= value is None
        if failure is not None:
            raise failure
        return None if unknown else not stop
    if op == "if":
        condition = _truth(evaluate(args[0], frame, focus))
        branch = args[1] if condition else (args[2] if len(args) > 2 else None)
        return None if branch is None else evaluate(branch, frame, focus)
    if op == "coalesce":
        for arg in args:
            found = evaluate(arg, frame, focus)
            if found is not None:
                return found
        return None
    values = [evaluate(a, frame, focus) for a in args]
    if op == "is_null":
        return values[0] is None
    if op == "array":
        return values
    if op == "in":
        if values[0] is None:
            return None
        if any(v == values[0] for v in values[1:] if v is not None):
            return True
        return None if any(v is None for v in values[1:]) else False
    if any(v is None for v in values):
        return None
    return _STRICT[op](*values)


def _divide(a: Value, b: Value) -> Value:
    if b == 0:
        raise RowPatternError("division by zero")
    if isinstance(a, int) and isinstance(b, int):
        q = abs(a) // abs(b)
        return q if (a >= 0) == (b >= 0) else -q
    return a / b  # type: ignore[operator]


def _modulo(a: Value, b: Value) -> Value:
    if b == 0:
        raise RowPatternError("division by zero")
    if isinstance(a, int) and isinstance(b, int):
        r = abs(a) % abs(b)
        return r if a >= 0 else -r
    return a % b  # type: ignore[operator]


@cache
def _like_regex(pattern: str) -> re.Pattern[str]:
    parts = [".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern]
    return re.compile("".join(parts), re.DOTALL)


def _cast(target: str) -> Callable[[Value], Value]:
    def convert(value: Value) -> Value:
        if target in ("varchar", "char"):
            return str(value).lower() if isinstance(value, bool) else str(value)
        if target in ("integer", "bigint", "smallint", "tinyint"):
            return int(value)  # type: ignore[call-overload]
        if target in ("double", "real"):
            return float(value)  # type: ignore[arg-type]
        if target == "boolean":
            return bool(value)
        raise RowPatternError(f"CAST to {target} is not supported")

    return convert


_STRICT: dict[str, Callable[..., Value]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": _divide,
    "%": _modulo,
    "neg": lambda a: -a,
    "not": lambda a: not a,
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "between": lambda a, lo, hi: lo <= a <= hi,
    "||": lambda a, b: a + b if isinstance(a, list) else f"{a}{b}",
    "like": lambda a, p: _like_regex(p).fullmatch(a) is not None,
    "abs": abs,
    "lower": lambda s: s.lower(),
    "upper": lambda s: s.upper(),
    "length": len,
    "concat": lambda *xs: "".join(str(x) for x in xs),
    "cast_varchar": _cast("varchar"),
    "cast_integer": _cast("integer"),
    "cast_bigint": _cast("bigint"),
    "cast_double": _cast("double"),
    "cast_boolean": _cast("boolean"),
}

#: Scalar functions and operators the evaluator knows (the compiler checks calls against it).
SCALAR_OPS = frozenset(_STRICT) | {"and", "or", "if", "coalesce", "is_null", "array", "in"}
AGGREGATES = frozenset(
    {"count", "sum", "avg", "min", "max", "array_agg", "bool_and", "bool_or", "arbitrary"}
    | {"max_by", "min_by"}
)
