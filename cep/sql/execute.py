"""Run a compiled MATCH_RECOGNIZE over bounded input and lay out the output relation.

Rows are grouped by the PARTITION BY columns (partitions in order of first appearance),
sorted by ORDER BY (stable, NULLs last), matched partition by partition, and laid out as
Trino does: ONE ROW PER MATCH gives the partition columns then the measures; ALL ROWS PER
MATCH gives the partition columns, the ORDER BY columns, the measures, then the other input
columns. An outer SELECT list, when given, is evaluated over that layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cep.sql import ast
from cep.sql.compiler import CompiledMatchRecognize, ExprCompiler, compile_match_recognize
from nfa import rowpattern_expr as rx
from nfa.rowpattern_run import RowsPerMatch, run_partition


@dataclass(frozen=True, slots=True)
class Result:
    columns: tuple[str, ...]
    rows: list[tuple[rx.Value, ...]]


def execute(
    mr: ast.MatchRecognize,
    select: tuple[ast.SelectItem, ...] | None,
    columns: Sequence[str],
    types: Sequence[str],
    rows: Sequence[Sequence[rx.Value]],
) -> Result:
    """The output of `SELECT select FROM input MATCH_RECOGNIZE (mr)`."""
    compiled = compile_match_recognize(mr, columns, types)
    names, out = _layout(compiled, [c.lower() for c in columns], rows)
    if select is None:
        return Result(tuple(names), out)
    out_types = [rx.RType.UNKNOWN] * len(names)
    exprs = ExprCompiler(list(zip(names, out_types, strict=True)), plain=True)
    items = [exprs.compile(item.expr) for item in select]
    result = []
    for row in out:
        frame = rx.Frame([row], 0, (), 0, 0, ())
        result.append(tuple(rx.evaluate(e, frame, 0) for e in items))
    labels = [item.alias or _default_name(item.expr, i) for i, item in enumerate(select)]
    return Result(tuple(labels), result)


def _default_name(e: ast.Expr, index: int) -> str:
    return e.name if isinstance(e, ast.ColumnRef) else f"_col{index}"


def _sort_key(row: Sequence[rx.Value], order: tuple[tuple[int, bool], ...]) -> tuple[object, ...]:
    key: list[object] = []
    for column, descending in order:
        value = row[column]
        if value is None:
            key.append((1, 0))
        else:
            key.append((0, _Descending(value) if descending else value))
    return tuple(key)


class _Descending:
    """Reverses the order of a value inside a sort key."""

    def __init__(self, value: object):
        self.value = value

    def __lt__(self, other: _Descending) -> bool:
        return bool(other.value < self.value)  # type: ignore[operator]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and bool(self.value == other.value)

    __hash__ = None  # type: ignore[assignment]


def _layout(
    compiled: CompiledMatchRecognize, columns: list[str], rows: Sequence[Sequence[rx.Value]]
) -> tuple[list[str], list[tuple[rx.Value, ...]]]:
    partitions: dict[tuple[rx.Value, ...], list[Sequence[rx.Value]]] = {}
    for row in rows:
        partitions.setdefault(tuple(row[i] for i in compiled.partition), []).append(row)
    query = compiled.query
    one_row = query.rows_per_match is RowsPerMatch.ONE
    order_columns = [c for c, _ in compiled.order]
    used = set(compiled.partition) | set(order_columns)
    rest = [i for i in range(len(columns)) if i not in used]
    lead = list(compiled.partition) + ([] if one_row else order_columns)
    names = [columns[i] for i in lead] + list(compiled.measure_names)
    if not one_row:
        names += [columns[i] for i in rest]
    out: list[tuple[rx.Value, ...]] = []
    for members in partitions.values():
        ordered = sorted(members, key=lambda r: _sort_key(r, compiled.order))
        for o in run_partition(query, ordered):
            row = ordered[o.row]
            measures = o.measures or (None,) * len(compiled.measure_names)
            values = [row[i] for i in lead] + list(measures)
            if not one_row:
                values += [row[i] for i in rest]
            out.append(tuple(values))
    return names, out
