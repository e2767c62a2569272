"""A plain-Python evaluator of typed expressions, with SQL's null semantics.

The reference engine evaluates conditions with it, and both engines compute the output
fields of a match with it (matches are rare next to events, so outputs need no kernel).
Values are Python ints, floats and bools; strings are `StringPool` ids; None is null.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from nfa import expr as ir
from nfa.batch import StringPool
from nfa.program import OutputSpec, Program

Value = int | float | bool | None
EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True, slots=True)
class Event:
    """One event as the reference engine sees it (also used to materialise matches)."""

    seq: int
    order: int  # processing order within the engine: FlinkCEP's event id
    key: int
    ts: int
    stream: int
    values: tuple[Value, ...]  # by schema column; None where null


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


class Evaluator:
    def __init__(self, program: Program, pool: StringPool):
        self.program = program
        self.pool = pool

    def output(
        self, spec: OutputSpec | None, stages: Sequence[Sequence[Event]]
    ) -> tuple[tuple[str, object], ...]:
        """The output fields of a (partial) match, with strings as Python strings."""
        if spec is None:
            return ()
        out: list[tuple[str, object]] = []
        for name, node in spec.fields:
            value = self.evaluate(node, None, stages)
            if value is not None and node.type is ir.Type.STRING:
                out.append((name, self.pool.value(int(value))))
            elif value is not None and node.type is ir.Type.BOOL:
                out.append((name, bool(value)))
            else:
                out.append((name, value))
        return tuple(out)

    def truth(self, expr: ir.Expr, event: Event | None, stages: Sequence[Sequence[Event]]) -> bool:
        return self.evaluate(expr, event, stages) is True

    def evaluate(
        self, expr: ir.Expr, event: Event | None, stages: Sequence[Sequence[Event]]
    ) -> Value:
        if isinstance(expr, ir.Const):
            if expr.type is ir.Type.STRING:
                return self.pool.intern(str(expr.value))
            return expr.value  # type: ignore[return-value]
        if isinstance(expr, ir.Field):
            assert event is not None
            return event.values[expr.column]
        if isinstance(expr, ir.EventTime):
            assert event is not None
            return event.ts
        if isinstance(expr, ir.StageAgg):
            return self.aggregate(expr, stages[expr.stage])
        return self.op(expr, event, stages)

    def aggregate(self, node: ir.StageAgg, events: Sequence[Event]) -> Value:
        if node.kind is ir.AggKind.COUNT and node.column == ir.EVENT_COLUMN:
            return len(events)
        if node.column == ir.TIME_COLUMN:
            values: list[Value] = [e.ts for e in events]
        else:
            values = [e.values[node.column] for e in events]
        if node.kind is ir.AggKind.FIRST:
            return values[0] if values else None
        if node.kind is ir.AggKind.LAST:
            return values[-1] if values else None
        present = [v for v in values if v is not None]
        if node.kind is ir.AggKind.COUNT:
            return len(present)
        if node.kind is ir.AggKind.COUNT_DISTINCT:
            return len(set(present))
        if not present:
            return None
        if node.kind is ir.AggKind.SUM:
            return sum(present)
        if node.kind is ir.AggKind.AVG:
            return sum(present) / len(present)
        if node.kind is ir.AggKind.MIN:
            return min(present)
        return max(present)

    def op(self, node: ir.Op, event: Event | None, stages: Sequence[Sequence[Event]]) -> Value:
        op = node.op
        if op == "stream_is":
            return event is not None and event.stream == node.params[0]
        if op in ("and", "or"):
            left = self.evaluate(node.args[0], event, stages)
            if op == "and" and left is False:
                return False
            if op == "or" and left is True:
                return True
            right = self.evaluate(node.args[1], event, stages)
            if op == "and":
                return False if right is False else (None if None in (left, right) else True)
            return True if right is True else (None if None in (left, right) else False)
        args = [self.evaluate(a, event, stages) for a in node.args]
        if op == "is_null":
            return args[0] is None
        if any(a is None for a in args):
            return None
        if op == "not":
            return not args[0]
        if op in ir.COMPARISONS:
            return _compare(op, args[0], args[1])  # type: ignore[arg-type]
        if op in ir.ARITHMETIC:
            return _arithmetic(op, args[0], args[1], node.type)  # type: ignore[arg-type]
        if op == "neg":
            return -args[0]  # type: ignore[operator]
        if op == "abs":
            return abs(args[0])  # type: ignore[arg-type]
        if op in ("min", "max"):
            value = min(args) if op == "min" else max(args)  # type: ignore[type-var]
            return float(value) if node.type is ir.Type.FLOAT else value  # type: ignore[arg-type]
        if op == "geo_km":
            return haversine_km(*(float(a) for a in args))  # type: ignore[arg-type]
        if op == "in":
            value = args[0]
            if node.args[0].type is ir.Type.STRING:
                return self.pool.value(value) in node.params  # type: ignore[arg-type]
            return any(value == p for p in node.params)
        if op == "lookup":
            return self.lookup(node, args[0])
        if op in ir.STRING_FUNCTIONS:
            return self.string_function(node, self.pool.value(args[0]))  # type: ignore[arg-type]
        raise ValueError(f"unknown operator {op!r}")

    def lookup(self, node: ir.Op, key: Value) -> Value:
        table = self.program.tables[int(node.params[0])]  # type: ignore[arg-type]
        probe = self.pool.value(key) if node.args[0].type is ir.Type.STRING else key  # type: ignore[arg-type]
        for k, v in table:
            if k == probe:
                return self.pool.intern(v) if isinstance(v, str) else v
        return None

    def string_function(self, node: ir.Op, text: str) -> Value:
        return string_function(node.op, text, node.params, self.pool)


def string_function(
    op: str, text: str, params: tuple[ir.ConstValue, ...], pool: StringPool
) -> Value:
    """A string function of `nfa.expr.STRING_FUNCTIONS` on one string value."""
    if op == "lower":
        return pool.intern(text.lower())
    if op == "upper":
        return pool.intern(text.upper())
    if op == "length":
        return len(text)
    needle = str(params[0])
    if op == "startswith":
        return text.startswith(needle)
    if op == "endswith":
        return text.endswith(needle)
    return needle in text


def _compare(op: str, a: float, b: float) -> bool:
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    return a >= b


def _arithmetic(op: str, a: float, b: float, result: ir.Type) -> Value:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if b == 0:
        return None  # division by zero is null, not an error that stops the stream
    if op == "/":
        return a / b if result is ir.Type.FLOAT else int(a / b)
    return math.fmod(a, b) if isinstance(a, float) or isinstance(b, float) else int(math.fmod(a, b))
