"""A MATCH_RECOGNIZE rule as the streaming engine runs it: the `SqlProgram`.

The SQL front end (`cep.sql.rules`) compiles a rule's query against a declared stream into
this value; `nfa.rowpattern_stream` runs it per key. It carries the same `info`, `emit`,
`on_timeout` and `stage_names` attributes as an NFA `nfa.program.Program`, so the code
that turns matches into alerts (topic, rule name, stage of each event) treats both alike.
A SQL rule's input columns are its stream's fields in declaration order; its key is the
stream's key field (PARTITION BY) and its order the stream's event time (ORDER BY).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nfa.expr import Type
from nfa.program import OutputSpec, RuleInfo, Schema
from nfa.rowpattern import Op
from nfa.rowpattern_expr import Agg, Call, Frame, MatchNumber, Nav, RExpr, RType, Value, evaluate
from nfa.rowpattern_run import RowPatternQuery, RowsPerMatch

#: How a stream field's type is seen by row pattern expressions.
FIELD_TYPES = {
    Type.BOOL: RType.BOOLEAN,
    Type.INT: RType.BIGINT,
    Type.FLOAT: RType.DOUBLE,
    Type.STRING: RType.VARCHAR,
    Type.TIMESTAMP: RType.BIGINT,
    Type.DURATION: RType.BIGINT,
}


_DEFAULT_EMIT = OutputSpec("cep.alerts", ())


@dataclass(frozen=True)
class SqlProgram:
    """One SQL rule, compiled: the row pattern query and what the alert needs."""

    info: RuleInfo
    schema: Schema
    stream: int  # the index of the FROM stream in `schema`
    key_column: int  # the PARTITION BY field, as an index into the stream's fields
    query: RowPatternQuery
    measure_names: tuple[str, ...]
    within_ms: int | None = None
    absent: int | None = None  # label id of NOT FOLLOWED BY (needs within_ms)
    #: Alert fields over the row (key value, *measures[, the row's other fields with ALL
    #: ROWS PER MATCH]); None: `output_names` as they are.
    select: tuple[tuple[str, RExpr], ...] | None = None
    emit: OutputSpec = _DEFAULT_EMIT
    on_timeout: OutputSpec | None = None  # SQL rules report no timed-out partial matches

    @property
    def stage_names(self) -> tuple[str, ...]:
        """Pattern variable names: a matched event's `stage` indexes this."""
        return self.query.program.names

    @property
    def all_rows(self) -> bool:
        """ALL ROWS PER MATCH: an alert per row of a match (`nfa.rowpattern_key._all_rows`)."""
        return self.query.rows_per_match is not RowsPerMatch.ONE

    @property
    def output_names(self) -> tuple[str, ...]:
        """The fields of `SELECT *`: the measures; with ALL ROWS PER MATCH, then the
        stream's fields except the key (the layout `select` is compiled over, after the
        key)."""
        if not self.all_rows:
            return self.measure_names
        fields = self.schema.streams[self.stream].fields
        return (
            *self.measure_names,
            *(f for i, (f, _) in enumerate(fields) if i != self.key_column),
        )

    @property
    def positional(self) -> bool:
        """Whether matches depend on rows before the retained ones: `^` or MATCH_NUMBER()."""
        program = self.query.program
        if any(i.op is Op.START for i in program.code):
            return True
        exprs = [*self.query.measures, *(d for d in program.defines if d)]
        if self.select is not None:
            exprs += [e for _, e in self.select]
        return any(_numbered(e) for e in exprs)

    @property
    def lookback(self) -> int:
        """How many rows before a match's first row PREV may read: the rows kept behind."""
        exprs = [*self.query.measures, *(d for d in self.query.program.defines if d)]
        return max((_lookback(e) for e in exprs), default=0)


def alert_fields(
    sp: SqlProgram, key_value: Value, measures: tuple[Value, ...], row: Sequence[Value] | None
) -> tuple[tuple[str, Value], ...]:
    """A match's alert fields: the measures (then, with ALL ROWS PER MATCH, the output
    row's other fields) under `output_names`, or the SELECT list evaluated over them."""
    layout = (key_value, *measures)
    if row is not None:
        layout += tuple(v for i, v in enumerate(row) if i != sp.key_column)
    if sp.select is None:
        return tuple(zip(sp.output_names, layout[1:], strict=True))
    frame = Frame([layout], 0, (), 0, 0, ())
    return tuple((name, evaluate(e, frame, 0)) for name, e in sp.select)


def _numbered(expr: RExpr) -> bool:
    if isinstance(expr, MatchNumber):
        return True
    if isinstance(expr, Nav):
        return _numbered(expr.expr)
    if isinstance(expr, Agg | Call):
        return any(_numbered(a) for a in expr.args)
    return False


def _lookback(expr: RExpr) -> int:
    if isinstance(expr, Nav):
        return max(-expr.physical_offset, 0) + _lookback(expr.expr)
    if isinstance(expr, Agg | Call):
        return max((_lookback(a) for a in expr.args), default=0)
    return 0
