"""Typed expressions: the form in which conditions and outputs travel inside a program.

The language compiles its checked AST into these nodes; `nfa` interprets them (reference
engine, outputs) and generates Numba source from them (product engine). `nfa` never sees
rule text or the language's AST. Every node carries its result type.

Strings are interned: at run time a string value is an integer id in a `StringPool`, so
string equality is integer equality and string functions become per-id lookup tables.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Type(enum.Enum):
    BOOL = "bool"
    INT = "int"
    FLOAT = "float"
    STRING = "string"
    TIMESTAMP = "timestamp"  # milliseconds since the epoch
    DURATION = "duration"  # milliseconds
    NULL = "null"  # the type of the literal `null` only

    @property
    def numeric(self) -> bool:
        return self in (Type.INT, Type.FLOAT, Type.TIMESTAMP, Type.DURATION)

    @property
    def stored_as_float(self) -> bool:
        """Whether a column of this type lives in the float matrix of a batch."""
        return self is Type.FLOAT


ConstValue = int | float | bool | str | None


@dataclass(frozen=True, slots=True)
class Const:
    type: Type
    value: ConstValue


@dataclass(frozen=True, slots=True)
class Field:
    """A column of the current event (index into the engine schema's columns)."""

    column: int
    type: Type


@dataclass(frozen=True, slots=True)
class EventTime:
    """The current event's event time."""

    type: Type = Type.TIMESTAMP


class AggKind(enum.Enum):
    FIRST = "first"
    LAST = "last"
    COUNT = "count"
    COUNT_DISTINCT = "count_distinct"
    SUM = "sum"
    AVG = "avg"
    MIN = "min"
    MAX = "max"


@dataclass(frozen=True, slots=True)
class StageAgg:
    """An aggregate over the events a partial match has already accepted into `stage`.

    `column` -1 means the event itself (count(stage)); `time` aggregates read event time
    (column -2). The current event is never included.
    """

    kind: AggKind
    stage: int
    column: int
    type: Type


EVENT_COLUMN = -1
TIME_COLUMN = -2


@dataclass(frozen=True, slots=True)
class Op:
    """An operator or function applied to typed arguments.

    `params` holds literal data of the operator: the constant set of `in`, the table
    index of `lookup`, the stream index of `stream_is`, the needle of `startswith`.
    """

    op: str
    args: tuple[Expr, ...]
    type: Type
    params: tuple[ConstValue, ...] = ()


Expr = Const | Field | EventTime | StageAgg | Op

ARITHMETIC = ("+", "-", "*", "/", "%")
COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
LOGICAL = ("and", "or", "not")
#: Functions from one string (id) to a value, computed once per distinct string.
STRING_FUNCTIONS = {
    "lower": Type.STRING,
    "upper": Type.STRING,
    "length": Type.INT,
    "startswith": Type.BOOL,
    "endswith": Type.BOOL,
    "contains": Type.BOOL,
}
NUMERIC_FUNCTIONS = ("abs", "min", "max", "geo_km", "neg")


def reads_stages(expr: Expr) -> bool:
    """Whether the expression is iterative (reads events of the partial match)."""
    if isinstance(expr, StageAgg):
        return True
    if isinstance(expr, Op):
        return any(reads_stages(a) for a in expr.args)
    return False


def walk(expr: Expr) -> list[Expr]:
    """Every node of the expression, parents before children."""
    out: list[Expr] = [expr]
    if isinstance(expr, Op):
        for arg in expr.args:
            out.extend(walk(arg))
    return out
