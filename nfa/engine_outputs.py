"""Matches and timeouts of the product engine as Python objects, in the reference's order.

The kernels leave each rule's outputs in arrays (`nfa.kernel_store.drain_outputs`: one row
per output, the events it took and the stored columns those events carry). Outputs are
rare, so they are built here in Python: the matched events, and the rule's output fields
computed by the reference's own evaluator (`nfa.interpret.Evaluator`) over the events of
the stages those fields read. Outputs of several rules are merged into the reference's
order: per released event the rules in order, then the watermark advance per (key, rule),
then (at the end) held-back matches per (key, rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nfa import expr as ir
from nfa.batch import StringPool
from nfa.interpret import Evaluator, Event, Value
from nfa.kernel_layout import Layout
from nfa.program import OutputSpec, Program, Schema
from nfa.results import EngineOutput, Match, MatchedEvent

#: One rule's drained outputs: (rule index, (rows, offsets, events, ints, floats, valid)).
Drained = tuple[int, tuple[Any, ...]]
Values = tuple[list[list[int]], list[list[float]], list[list[bool]]]


class OutputBuilder:
    """Builds the `Match` objects of drained kernel outputs for a set of programs."""

    def __init__(
        self,
        programs: Sequence[Program],
        layouts: Sequence[Layout],
        schema: Schema,
        pool: StringPool,
    ):
        self.programs = list(programs)
        self.width = len(schema.columns)
        self.evaluators = [Evaluator(p, pool) for p in self.programs]
        self.readers = [_column_readers(schema, layout) for layout in layouts]
        self.stage_modes = [
            (_read_stages(p, p.emit), _read_stages(p, p.on_timeout)) for p in programs
        ]

    def merge(self, parts: list[Drained], out: EngineOutput) -> None:
        """Matches and timeouts of the drained rules, in the reference's order."""
        items: list[tuple[int, int, int, int, Match]] = []
        for r, (rows, offsets, events, vi, vf, vv) in parts:
            stage_of, seq_of, ts_of = events.tolist()
            ev = [stage_of, seq_of, ts_of]
            values = (vi.tolist(), vf.tolist(), vv.tolist())
            bounds = offsets.tolist()
            for o, (kind, key, _node, when, phase, tag) in enumerate(rows.tolist()):
                lo, hi = bounds[o], bounds[o + 1]
                matched = tuple(map(MatchedEvent, stage_of[lo:hi], seq_of[lo:hi], ts_of[lo:hi]))
                fields = self._fields(r, kind == 1, key, ev, values, lo, hi)
                match = Match(r, key, matched, when, kind == 1, fields)
                items.append((phase, tag, r, len(items), match))
        items.sort(key=lambda item: item[:4])
        for *_, match in items:
            (out.timeouts if match.timed_out else out.matches).append(match)

    def _fields(
        self,
        r: int,
        timed_out: bool,
        key: int,
        ev: list[list[int]],
        values: Values,
        lo: int,
        hi: int,
    ) -> tuple[tuple[str, object], ...]:
        """The rule's output fields over the match's events (as the reference computes them).

        Only the stages the fields read get their events built: a stage read only by
        `count(stage)` gets as many copies of one placeholder (the evaluator takes its
        length only), a stage no field reads stays empty (`_read_stages`)."""
        program = self.programs[r]
        spec = program.on_timeout if timed_out else program.emit
        if spec is None:
            return ()
        modes = self.stage_modes[r][timed_out]
        stages: list[list[Event]] = [[] for _ in modes]
        placeholder = Event(0, 0, key, 0, 0, ())
        vi, vf, vv = values
        readers = self.readers[r]
        stage_of, seq_of, ts_of = ev
        for j in range(lo, hi):
            stage = stage_of[j]
            mode = modes[stage]
            if mode == 1:
                stages[stage].append(placeholder)
            elif mode == 2:
                row: list[Value] = [None] * self.width
                ints, floats, valid = vi[j], vf[j], vv[j]
                for v, c, slot, convert in readers:  # only the columns the outputs read
                    if valid[v]:
                        row[c] = convert(floats[slot] if convert is float else ints[slot])
                stream = program.stage_streams[stage]
                stages[stage].append(Event(seq_of[j], 0, key, ts_of[j], stream, tuple(row)))
        return self.evaluators[r].output(spec, stages)


def _column_readers(schema: Schema, layout: Layout) -> list[tuple[int, int, int, type]]:
    """(stored index, schema column, value slot, conversion) of a rule's stored columns."""
    out: list[tuple[int, int, int, type]] = []
    for v, c in enumerate(layout.columns):
        column = schema.columns[c]
        convert: type = int
        if column.type.stored_as_float:
            convert = float
        elif column.type.value == "bool":
            convert = bool
        out.append((v, c, layout.value_index[c], convert))
    return out


def _read_stages(program: Program, spec: OutputSpec | None) -> list[int]:
    """Per stage, what the output fields read of its events: 0 nothing, 1 only how many
    (`count(stage)`), 2 their values."""
    modes = [0] * len(program.stage_names)
    for _, root in spec.fields if spec is not None else ():
        for node in ir.walk(root):
            if isinstance(node, ir.StageAgg):
                counted = node.kind is ir.AggKind.COUNT and node.column == ir.EVENT_COLUMN
                modes[node.stage] = max(modes[node.stage], 1 if counted else 2)
    return modes
