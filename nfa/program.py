"""The NFA program: what the language compiles a rule into and what the engines run.

A program is immutable. Its automaton follows FlinkCEP's compiled NFA: states, and edges
that either TAKE the current event (append it to a stage and move), IGNORE it (stay or move
without taking it) or PROCEED (an epsilon move, checked against the same event). Edges are
listed per state in priority order; that order is also the preference order the SQL front
end needs. Edge conditions are small postfix formulas over *atoms*, the typed boolean
expressions of `nfa.expr`, so one atom (a stage's condition) serves its take, ignore and
greedy edges, and an atom that reads no stage can be evaluated once per event for all rules.

`Schema` is the column layout of the event batches that an engine receives: one or more
streams, each with typed fields, flattened into global columns.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from nfa.expr import AggKind, ConstValue, Expr, Type


class StateKind(enum.IntEnum):
    NORMAL = 0
    FINAL = 1
    STOP = 2  # reaching it discards the partial match (negation)
    PENDING = 3  # absence at the end: becomes a match when its window passes


class Action(enum.IntEnum):
    TAKE = 0
    IGNORE = 1
    PROCEED = 2


class SkipKind(enum.IntEnum):
    NO_SKIP = 0
    TO_NEXT = 1
    PAST_LAST = 2
    TO_FIRST = 3
    TO_LAST = 4


# Postfix formula opcodes; a non-negative code pushes that atom's value.
F_NOT = -1
F_AND = -2
F_OR = -3
F_TRUE = -4


@dataclass(frozen=True, slots=True)
class Column:
    name: str  # "stream.field"
    stream: int
    field: str
    type: Type
    slot: int  # row of the float matrix (FLOAT) or of the int matrix (everything else)


@dataclass(frozen=True, slots=True)
class StreamSchema:
    name: str
    key: str
    time_field: str | None  # None: the record timestamp (Kafka) or processing time
    out_of_order_ms: int
    idle_ms: int | None
    fields: tuple[tuple[str, Type], ...]
    processing_time: bool = False  # events are stamped with their arrival time (wall clock)


@dataclass(frozen=True)
class Schema:
    """The streams an engine reads and their flattened columns."""

    streams: tuple[StreamSchema, ...]
    columns: tuple[Column, ...] = field(init=False)

    def __post_init__(self) -> None:
        columns: list[Column] = []
        n_float = n_int = 0
        for s_index, stream in enumerate(self.streams):
            for name, type_ in stream.fields:
                if type_.stored_as_float:
                    slot, n_float = n_float, n_float + 1
                else:
                    slot, n_int = n_int, n_int + 1
                columns.append(Column(f"{stream.name}.{name}", s_index, name, type_, slot))
        object.__setattr__(self, "columns", tuple(columns))

    @property
    def n_float(self) -> int:
        return sum(1 for c in self.columns if c.type.stored_as_float)

    @property
    def n_int(self) -> int:
        return len(self.columns) - self.n_float

    def stream_index(self, name: str) -> int:
        for i, stream in enumerate(self.streams):
            if stream.name == name:
                return i
        raise KeyError(name)

    def column(self, stream: str, name: str) -> Column:
        for column in self.columns:
            if column.name == f"{stream}.{name}":
                return column
        raise KeyError(f"{stream}.{name}")


@dataclass(frozen=True, slots=True)
class Aggregate:
    """A per-partial-match aggregate slot, updated when `stage` takes an event."""

    stage: int
    kind: AggKind
    column: int  # EVENT_COLUMN, TIME_COLUMN or a schema column


@dataclass(frozen=True, slots=True)
class OutputSpec:
    topic: str
    fields: tuple[tuple[str, Expr], ...]  # evaluated over the whole match


@dataclass(frozen=True, slots=True)
class RuleInfo:
    name: str
    version: int
    severity: str
    labels: tuple[str, ...]
    description: str
    enabled: bool


IntArray = npt.NDArray[np.int32]


@dataclass(frozen=True)
class Program:
    """One compiled rule.

    Arrays (all int32): per state `state_kind`, `state_stage` (the stage whose events it
    takes, -1 for final/stop), `state_edges` (start offset into the edge arrays; edges of
    state s are `state_edges[s]:state_edges[s+1]`); per edge `edge_action`, `edge_target`,
    `edge_stage` (the stage a TAKE appends to) and `edge_formula` (start offset into
    `formula_code`; formula e is `formula_code[edge_formula[e]:edge_formula[e+1]]`).
    """

    info: RuleInfo
    schema: Schema
    stage_names: tuple[str, ...]
    stage_streams: tuple[int, ...]
    start_state: int
    state_names: tuple[str, ...]
    state_kind: IntArray
    state_stage: IntArray
    state_edges: IntArray
    edge_action: IntArray
    edge_target: IntArray
    edge_stage: IntArray
    edge_formula: IntArray
    formula_code: IntArray
    atoms: tuple[Expr, ...]
    aggregates: tuple[Aggregate, ...]
    window_ms: int  # 0: no window
    skip: SkipKind
    skip_stage: int  # for TO_FIRST / TO_LAST, else -1
    emit: OutputSpec | None
    on_timeout: OutputSpec | None
    tables: tuple[tuple[tuple[ConstValue, ConstValue], ...], ...] = ()

    @property
    def n_states(self) -> int:
        return len(self.state_names)

    def edges_of(self, state: int) -> range:
        return range(int(self.state_edges[state]), int(self.state_edges[state + 1]))

    def formula(self, edge: int) -> list[int]:
        start, end = int(self.edge_formula[edge]), int(self.edge_formula[edge + 1])
        return [int(c) for c in self.formula_code[start:end]]

    def fingerprint(self) -> str:
        """A stable hash of everything the engines run, for compilation caches."""
        # repr, not pickle: pickle output depends on object identity, repr only on values.
        payload = repr(
            (
                self.schema,
                self.stage_streams,
                self.start_state,
                self.state_kind.tolist(),
                self.state_stage.tolist(),
                self.state_edges.tolist(),
                self.edge_action.tolist(),
                self.edge_target.tolist(),
                self.edge_stage.tolist(),
                self.edge_formula.tolist(),
                self.formula_code.tolist(),
                self.atoms,
                self.aggregates,
                self.window_ms,
                int(self.skip),
                self.skip_stage,
                self.tables,
            )
        ).encode()
        return hashlib.sha256(payload).hexdigest()[:20]

    def describe(self) -> str:
        """States and edges as text, for `cep explain`."""
        from nfa.explain import describe

        return describe(self)


def used_columns(programs: Sequence[Program]) -> frozenset[int]:
    """The schema columns that the programs' conditions, aggregates and outputs read.

    A decoder can skip the work of interning the other string fields.
    """
    from nfa.expr import Field, StageAgg, walk

    used: set[int] = set()
    for program in programs:
        exprs = list(program.atoms)
        for spec in (program.emit, program.on_timeout):
            if spec is not None:
                exprs.extend(e for _, e in spec.fields)
        for expr in exprs:
            for node in walk(expr):
                if isinstance(node, Field | StageAgg) and node.column >= 0:
                    used.add(node.column)
        used.update(a.column for a in program.aggregates if a.column >= 0)
    return frozenset(used)
