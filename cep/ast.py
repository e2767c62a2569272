"""The abstract syntax tree of rule files: frozen dataclasses, each with its source span.

The parser (DSL or YAML) and the Python builder API both produce these nodes; the checker
reads them and the compiler turns checked rules into NFA programs.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from cep.errors import Span

_NOWHERE = Span.unknown("<api>")

# ----------------------------------------------------------------------------- values

Scalar = int | float | str | bool | None


@dataclass(frozen=True, slots=True)
class Duration:
    """A length of time in milliseconds (`10m` is Duration(600000))."""

    millis: int


# ----------------------------------------------------------------------------- expressions


@dataclass(frozen=True, slots=True)
class Literal:
    value: Scalar | Duration
    span: Span = _NOWHERE


@dataclass(frozen=True, slots=True)
class ListLiteral:
    items: tuple[Literal, ...]
    span: Span = _NOWHERE


@dataclass(frozen=True, slots=True)
class MapLiteral:
    entries: tuple[tuple[Literal, Literal], ...]
    span: Span = _NOWHERE


@dataclass(frozen=True, slots=True)
class Name:
    """A bare name: a field of the current event, a named constant, or a stage (in aggregates)."""

    name: str
    span: Span = _NOWHERE


@dataclass(frozen=True, slots=True)
class Qualified:
    """`stage.field` (the stage's last accepted event) or `stream.field` (the current event)."""

    qualifier: str
    name: str
    span: Span = _NOWHERE


@dataclass(frozen=True, slots=True)
class Call:
    """A function or aggregate call: `lower(country)`, `count(small)`, `sum(small.amount)`."""

    function: str
    args: tuple[Expr, ...]
    span: Span = _NOWHERE


@dataclass(frozen=True, slots=True)
class Lookup:
    """`TABLE[key]`: a value from a lookup table declared with `const`."""

    table: str
    key: Expr
    span: Span = _NOWHERE


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "-" | "not"
    operand: Expr
    span: Span = _NOWHERE


@dataclass(frozen=True, slots=True)
class Binary:
    op: str  # + - * / % == != < <= > >= and or
    left: Expr
    right: Expr
    span: Span = _NOWHERE


@dataclass(frozen=True, slots=True)
class Member:
    """`x in [..]` / `x in CONST_LIST`, or its negation."""

    operand: Expr
    target: ListLiteral | Name
    negated: bool = False
    span: Span = _NOWHERE


@dataclass(frozen=True, slots=True)
class Between:
    operand: Expr
    low: Expr
    high: Expr
    negated: bool = False
    span: Span = _NOWHERE


@dataclass(frozen=True, slots=True)
class IsNull:
    operand: Expr
    negated: bool = False
    span: Span = _NOWHERE


Expr = (
    Literal
    | ListLiteral
    | Name
    | Qualified
    | Call
    | Lookup
    | Unary
    | Binary
    | Member
    | Between
    | IsNull
)


# ----------------------------------------------------------------------------- patterns


class Contiguity(enum.Enum):
    """How a stage's first event relates to the event taken before it."""

    STRICT = "next"
    RELAXED = "followed by"
    ANY = "followed by any"


class LoopContiguity(enum.Enum):
    """How iterations of a loop relate to each other."""

    RELAXED = "relaxed"
    CONSECUTIVE = "consecutive"
    COMBINATIONS = "combinations"


@dataclass(frozen=True, slots=True)
class Quantifier:
    """`min`..`max` repetitions; `max` None means unbounded. `?` is (0, 1)."""

    min: int
    max: int | None
    span: Span = _NOWHERE

    @property
    def looping(self) -> bool:
        return self.max is None

    @property
    def optional(self) -> bool:
        return self.min == 0


ONCE = Quantifier(1, 1)


@dataclass(frozen=True, slots=True)
class Stage:
    """One step of a pattern: events of `stream` that satisfy the stage's condition."""

    name: str
    stream: str | None = None
    quantifier: Quantifier = ONCE
    inner: LoopContiguity = LoopContiguity.RELAXED
    greedy: bool = False
    until: Expr | None = None
    span: Span = _NOWHERE


@dataclass(frozen=True, slots=True)
class Group:
    """Parenthesised alternatives of sub-patterns, with an optional quantifier."""

    alternatives: tuple[Pattern, ...]
    quantifier: Quantifier = ONCE
    inner: LoopContiguity = LoopContiguity.RELAXED
    greedy: bool = False
    until: Expr | None = None
    span: Span = _NOWHERE


Element = Stage | Group


@dataclass(frozen=True, slots=True)
class Step:
    """An element and how it connects to what comes before it (ignored for the first)."""

    element: Element
    contiguity: Contiguity = Contiguity.RELAXED
    negated: bool = False
    span: Span = _NOWHERE


@dataclass(frozen=True, slots=True)
class Pattern:
    steps: tuple[Step, ...]
    span: Span = _NOWHERE


# ----------------------------------------------------------------------------- rules


class SkipKind(enum.Enum):
    NONE = "none"
    TO_NEXT = "to next"
    PAST_LAST = "past last"
    TO_FIRST = "to first"
    TO_LAST = "to last"


@dataclass(frozen=True, slots=True)
class Skip:
    kind: SkipKind = SkipKind.NONE
    stage: str | None = None
    span: Span = _NOWHERE


@dataclass(frozen=True, slots=True)
class Condition:
    stage: str
    expr: Expr
    span: Span = _NOWHERE


@dataclass(frozen=True, slots=True)
class OutputField:
    name: str
    expr: Expr
    span: Span = _NOWHERE


@dataclass(frozen=True, slots=True)
class Output:
    """A derived event: the topic it goes to and its computed fields."""

    topic: str
    fields: tuple[OutputField, ...]
    span: Span = _NOWHERE


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    title: str = ""
    description: str = ""
    version: int = 1
    severity: str = "medium"
    labels: tuple[str, ...] = ()
    enabled: bool = True
    streams: tuple[str, ...] = ()
    pattern: Pattern | None = None
    conditions: tuple[Condition, ...] = ()
    within: Duration | None = None
    skip: Skip = field(default_factory=Skip)
    emit: Output | None = None
    on_timeout: Output | None = None
    span: Span = _NOWHERE


# ----------------------------------------------------------------------------- streams


class TimeSource(enum.Enum):
    FIELD = "field"
    KAFKA = "kafka"
    PROCESSING = "processing"


FIELD_TYPES = ("int", "float", "string", "bool", "timestamp")


@dataclass(frozen=True, slots=True)
class FieldDecl:
    name: str
    type: str
    span: Span = _NOWHERE


@dataclass(frozen=True, slots=True)
class StreamDecl:
    name: str
    key: str | None = None
    time_source: TimeSource = TimeSource.FIELD
    time_field: str | None = None
    out_of_order: Duration = Duration(0)
    idle: Duration | None = None
    fields: tuple[FieldDecl, ...] = ()
    span: Span = _NOWHERE


@dataclass(frozen=True, slots=True)
class ConstDecl:
    name: str
    value: Literal | ListLiteral | MapLiteral
    span: Span = _NOWHERE


@dataclass(frozen=True, slots=True)
class RuleFile:
    """Everything one file (or several merged files) declares."""

    streams: tuple[StreamDecl, ...] = ()
    consts: tuple[ConstDecl, ...] = ()
    rules: tuple[Rule, ...] = ()

    def merged(self, other: RuleFile) -> RuleFile:
        return RuleFile(
            self.streams + other.streams, self.consts + other.consts, self.rules + other.rules
        )
