"""The syntax tree of a MATCH_RECOGNIZE query: frozen dataclasses, each with a source span.

Names are already normalised here, as SQL does: an unquoted pattern variable is folded to
upper case (`a` and `A` are one variable, CLASSIFIER() returns `A`), a quoted one keeps its
case; unquoted column and measure names are folded to lower case.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from cep.errors import Span

_NO_SPAN = Span.unknown()


# ---------------------------------------------------------------- expressions
@dataclass(frozen=True, slots=True)
class Literal:
    """A constant; `kind` is int, decimal, double, string, bool or null."""

    value: int | float | str | bool | None
    kind: str
    span: Span = field(default=_NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class ColumnRef:
    """`value` (label None: the universal row pattern variable) or `A.value`."""

    label: str | None
    name: str
    span: Span = field(default=_NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class Call:
    """A function call: navigation, CLASSIFIER, MATCH_NUMBER, aggregates, scalars.

    `semantics` is RUNNING / FINAL when written; `star` marks `count(*)`, and `star_label`
    `count(A.*)`.
    """

    name: str
    args: tuple[Expr, ...]
    semantics: str | None = None
    star: bool = False
    star_label: str | None = None
    span: Span = field(default=_NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "-" or "not"
    arg: Expr
    span: Span = field(default=_NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class Binary:
    """Arithmetic, comparison (`=`, `<>`, ...), `||`, `and`, `or`."""

    op: str
    left: Expr
    right: Expr
    span: Span = field(default=_NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class InList:
    arg: Expr
    items: tuple[Expr, ...]
    negated: bool = False
    span: Span = field(default=_NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class Like:
    arg: Expr
    pattern: Expr
    negated: bool = False
    span: Span = field(default=_NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class IsNull:
    arg: Expr
    negated: bool = False
    span: Span = field(default=_NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class Between:
    arg: Expr
    low: Expr
    high: Expr
    negated: bool = False
    span: Span = field(default=_NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class Cast:
    arg: Expr
    type_name: str  # lower case, parameters dropped: varchar(7) -> varchar
    span: Span = field(default=_NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class ArrayCtor:
    items: tuple[Expr, ...]
    span: Span = field(default=_NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class RowCtor:
    """`(a, b)`: only meaningful as a VALUES row."""

    items: tuple[Expr, ...]
    span: Span = field(default=_NO_SPAN, compare=False)


Expr = (
    Literal
    | ColumnRef
    | Call
    | Unary
    | Binary
    | InList
    | Like
    | IsNull
    | Between
    | Cast
    | ArrayCtor
    | RowCtor
)


# ---------------------------------------------------------------- row patterns
@dataclass(frozen=True, slots=True)
class Label:
    name: str
    span: Span = field(default=_NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class Empty:
    """`()`: matches the empty sequence."""

    span: Span = field(default=_NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class Anchor:
    """`^` (start of partition, `start=True`) or `$` (end of partition)."""

    start: bool
    span: Span = field(default=_NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class Concat:
    items: tuple[Pattern, ...]
    span: Span = field(default=_NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class Alternation:
    """Branches in preference order: the left one is tried first."""

    items: tuple[Pattern, ...]
    span: Span = field(default=_NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class Permute:
    items: tuple[Pattern, ...]
    span: Span = field(default=_NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class Exclusion:
    """`{- p -}`: rows matched by `p` belong to the match but are not output."""

    body: Pattern
    span: Span = field(default=_NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class Quantified:
    """`body{low,high}`; high None is unbounded; greedy False for `?`-suffixed quantifiers."""

    body: Pattern
    low: int
    high: int | None
    greedy: bool = True
    span: Span = field(default=_NO_SPAN, compare=False)


Pattern = Label | Empty | Anchor | Concat | Alternation | Permute | Exclusion | Quantified


def sub_patterns(pattern: Pattern) -> tuple[Pattern, ...]:
    """The patterns directly inside `pattern`, in order."""
    if isinstance(pattern, Concat | Alternation | Permute):
        return pattern.items
    if isinstance(pattern, Exclusion | Quantified):
        return (pattern.body,)
    return ()


# ---------------------------------------------------------------- clauses
class RowsPerMatch(enum.Enum):
    ONE = "ONE ROW PER MATCH"
    ALL_SHOW_EMPTY = "ALL ROWS PER MATCH SHOW EMPTY MATCHES"
    ALL_OMIT_EMPTY = "ALL ROWS PER MATCH OMIT EMPTY MATCHES"
    ALL_WITH_UNMATCHED = "ALL ROWS PER MATCH WITH UNMATCHED ROWS"


class SkipKind(enum.Enum):
    PAST_LAST_ROW = "PAST LAST ROW"
    TO_NEXT_ROW = "TO NEXT ROW"
    TO_FIRST = "TO FIRST"
    TO_LAST = "TO LAST"


@dataclass(frozen=True, slots=True)
class AfterMatchSkip:
    kind: SkipKind
    label: str | None = None
    span: Span = field(default=_NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class SortItem:
    expr: Expr
    descending: bool = False


@dataclass(frozen=True, slots=True)
class Measure:
    expr: Expr
    name: str
    span: Span = field(default=_NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class Subset:
    name: str
    members: tuple[str, ...]
    span: Span = field(default=_NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class Definition:
    label: str
    condition: Expr
    span: Span = field(default=_NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class MatchRecognize:
    """The MATCH_RECOGNIZE clause, with the streaming extensions `within_ms` and `absent`."""

    pattern: Pattern
    partition_by: tuple[Expr, ...] = ()
    order_by: tuple[SortItem, ...] = ()
    measures: tuple[Measure, ...] = ()
    rows_per_match: RowsPerMatch = RowsPerMatch.ONE
    skip: AfterMatchSkip = AfterMatchSkip(SkipKind.PAST_LAST_ROW)
    subsets: tuple[Subset, ...] = ()
    definitions: tuple[Definition, ...] = ()
    absent: str | None = None  # NOT FOLLOWED BY <label> at the end of the pattern
    within_ms: int | None = None
    span: Span = field(default=_NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class SelectItem:
    expr: Expr
    alias: str | None = None


@dataclass(frozen=True, slots=True)
class Values:
    """`(VALUES ...) t(a, b)`: inline rows (each a tuple of literal expressions)."""

    rows: tuple[tuple[Expr, ...], ...]
    alias: str | None = None
    columns: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TableName:
    name: str
    span: Span = field(default=_NO_SPAN, compare=False)


@dataclass(frozen=True, slots=True)
class Query:
    """`SELECT items FROM relation MATCH_RECOGNIZE (...) AS alias`; items None is `*`."""

    select: tuple[SelectItem, ...] | None
    relation: Values | TableName
    match_recognize: MatchRecognize
    alias: str | None = None
