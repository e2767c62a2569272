"""Per-rule layout of the product engine's state arrays: which slots a rule really needs.

Two things are sized per rule from its program instead of from the schema:

- aggregate slots: only aggregates that an iterative atom reads are kept per run (those
  that only output fields read are computed from the match's events in Python), and each
  kept aggregate gets only the arrays its kind uses (int or float value, count, not-null);
- stored event columns: only columns that an output field or a `count_distinct` reads are
  copied into the event slots of taken events (conditions read the batch, not the slots).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nfa import expr as ir
from nfa.program import Aggregate, Program, Schema

_AGG_CODES = {
    ir.AggKind.FIRST: 0,
    ir.AggKind.LAST: 1,
    ir.AggKind.COUNT: 2,
    ir.AggKind.COUNT_DISTINCT: 3,
    ir.AggKind.SUM: 4,
    ir.AggKind.AVG: 5,
    ir.AggKind.MIN: 6,
    ir.AggKind.MAX: 7,
}
# Source kinds of an aggregate's value (as nfa.kernel_skip's SRC_*)
SRC_EVENT, SRC_TIME, SRC_FLOAT, SRC_INT = 0, 1, 2, 3
# Columns of an aggregate row
AG_STAGE, AG_KIND, AG_SRC, AG_VROW, AG_SLOT, AG_INT, AG_FLOAT, AG_COUNT, AG_OK = range(9)
AGF = 9


def _source(schema: Schema, column: int) -> tuple[int, int, int]:
    """(source kind, valid row, value slot) of an aggregate's column in the event batch."""
    if column == ir.EVENT_COLUMN:
        return SRC_EVENT, -1, 0
    if column == ir.TIME_COLUMN:
        return SRC_TIME, -1, 0
    col = schema.columns[column]
    return (SRC_FLOAT if col.type.stored_as_float else SRC_INT), column, col.slot


@dataclass(frozen=True)
class Layout:
    """One rule's slot layout (see the module docstring)."""

    aggregates: tuple[Aggregate, ...]  # the kept ones, in slot-table order
    agg: npt.NDArray[np.int64]  # [kept aggregate, AGF]
    n_int: int
    n_float: int
    n_count: int
    n_ok: int
    columns: tuple[int, ...]  # stored schema columns (valid row j of a slot = columns[j])
    ev_int: npt.NDArray[np.int64]  # batch int slot of each stored int column
    ev_float: npt.NDArray[np.int64]
    ev_valid: npt.NDArray[np.int64]  # batch valid row of each stored column
    value_index: dict[int, int]  # schema column -> its row in the slot's int/float values

    def agg_row(self, node: ir.StageAgg) -> npt.NDArray[np.int64]:
        row: npt.NDArray[np.int64] = self.agg[
            self.aggregates.index(Aggregate(node.stage, node.kind, node.column))
        ]
        return row


def layout(program: Program) -> Layout:
    """The layout of `program`'s aggregate slots and stored event columns."""
    schema = program.schema
    used: set[Aggregate] = set()
    columns: set[int] = set()
    for atom in program.atoms:
        for node in ir.walk(atom):
            if isinstance(node, ir.StageAgg):
                if node.kind is ir.AggKind.COUNT_DISTINCT:
                    if node.column >= 0:
                        columns.add(node.column)
                else:
                    used.add(Aggregate(node.stage, node.kind, node.column))
    for spec in (program.emit, program.on_timeout):
        for _, expr in spec.fields if spec is not None else ():
            for node in ir.walk(expr):
                if isinstance(node, ir.Field | ir.StageAgg) and node.column >= 0:
                    columns.add(node.column)
    kept = tuple(a for a in program.aggregates if a in used)
    rows = np.full((len(kept), AGF), -1, np.int64)
    n = {"int": 0, "float": 0, "count": 0, "ok": 0}

    def slot(kind: str) -> int:
        n[kind] += 1
        return n[kind] - 1

    for k, a in enumerate(kept):
        src, vrow, vslot = _source(schema, a.column)
        rows[k, :AG_INT] = (a.stage, _AGG_CODES[a.kind], src, vrow, vslot)
        rows[k, AG_COUNT] = slot("count")
        if a.kind is not ir.AggKind.COUNT:
            rows[k, AG_FLOAT if src == SRC_FLOAT else AG_INT] = slot(
                "float" if src == SRC_FLOAT else "int"
            )
        if a.kind in (ir.AggKind.FIRST, ir.AggKind.LAST):
            rows[k, AG_OK] = slot("ok")
    stored = tuple(sorted(columns))
    ints = [c for c in stored if not schema.columns[c].type.stored_as_float]
    floats = [c for c in stored if schema.columns[c].type.stored_as_float]
    value_index = {c: j for j, c in enumerate(ints)} | {c: j for j, c in enumerate(floats)}
    return Layout(
        kept,
        rows,
        n["int"],
        n["float"],
        n["count"],
        n["ok"],
        stored,
        np.array([schema.columns[c].slot for c in ints], np.int64),
        np.array([schema.columns[c].slot for c in floats], np.int64),
        np.array(stored, np.int64),
        value_index,
    )
