"""Type-check AST expressions and lower them to the typed expressions of `nfa.expr`.

Problems are collected as diagnostics, never raised one by one; a failed sub-expression
lowers to a `null` constant so checking goes on and reports the next mistake too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cep import ast
from cep.errors import Diagnostic, Span, error
from nfa import expr as ir
from nfa.program import Schema

T = ir.Type
_AGGREGATES = {"first", "last", "count", "count_distinct", "sum", "avg", "min", "max"}
_STRING_FUNCTIONS_WITH_NEEDLE = ("startswith", "endswith", "contains")


@dataclass
class Scope:
    """What names mean inside one condition or output of one rule."""

    schema: Schema
    consts: dict[str, ast.ConstDecl]
    stage_streams: dict[str, int]  # stage name -> stream index
    stage_index: dict[str, int]
    current_stream: int | None  # stream of the current event (None in outputs)
    visible_stages: frozenset[str]  # stages an aggregate may read here
    tables: list[tuple[tuple[ir.ConstValue, ir.ConstValue], ...]]
    table_index: dict[str, int] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def literal_type(value: object) -> ir.Type:
    if value is None:
        return T.NULL
    if isinstance(value, bool):
        return T.BOOL
    if isinstance(value, int):
        return T.INT
    if isinstance(value, float):
        return T.FLOAT
    if isinstance(value, ast.Duration):
        return T.DURATION
    return T.STRING


def _const(value: object) -> ir.Const:
    if isinstance(value, ast.Duration):
        return ir.Const(T.DURATION, value.millis)
    return ir.Const(literal_type(value), value)  # type: ignore[arg-type]


_NULL = ir.Const(T.NULL, None)


class Lowerer:
    """Lowers the expressions of one scope; `lower` never raises on a user mistake."""

    def __init__(self, scope: Scope):
        self.scope = scope

    def fail(self, code: str, span: Span, message: str) -> ir.Expr:
        self.scope.diagnostics.append(error(code, span, message))
        return _NULL

    def condition(self, node: ast.Expr) -> ir.Expr:
        lowered = self.lower(node)
        if lowered.type not in (T.BOOL, T.NULL):
            self.fail("E210", _span(node), f"a condition must be true or false, not {_t(lowered)}")
        return lowered

    def lower(self, node: ast.Expr) -> ir.Expr:
        method: Callable[[ast.Expr], ir.Expr] = getattr(self, "_" + type(node).__name__.lower())
        return method(node)

    # ------------------------------------------------------------------ leaves
    def _literal(self, node: ast.Literal) -> ir.Expr:
        return _const(node.value)

    def _listliteral(self, node: ast.ListLiteral) -> ir.Expr:
        return self.fail("E211", node.span, "a list can only follow `in`")

    def _name(self, node: ast.Name) -> ir.Expr:
        scope = self.scope
        if scope.current_stream is not None:
            stream = scope.schema.streams[scope.current_stream].name
            try:
                column = scope.schema.column(stream, node.name)
            except KeyError:
                pass
            else:
                return ir.Field(scope.schema.columns.index(column), column.type)
        const = scope.consts.get(node.name)
        if const is not None:
            if isinstance(const.value, ast.Literal):
                return _const(const.value.value)
            return self.fail("E212", node.span, f"`{node.name}` is a list or table, not a value")
        if node.name in scope.stage_index:
            return self.fail(
                "E213",
                node.span,
                f"`{node.name}` is a stage; use `{node.name}.field` or an aggregate such as "
                f"count({node.name})",
            )
        if scope.current_stream is None:
            return self.fail(
                "E201",
                node.span,
                f"unknown name `{node.name}` (outputs name fields as stage.field)",
            )
        stream = scope.schema.streams[scope.current_stream].name
        return self.fail("E201", node.span, f"unknown field `{node.name}` in stream `{stream}`")

    def _qualified(self, node: ast.Qualified) -> ir.Expr:
        scope = self.scope
        if node.qualifier in scope.stage_index:
            return self._aggregate(ir.AggKind.LAST, node.qualifier, node.name, node.span)
        stream_names = [s.name for s in scope.schema.streams]
        if node.qualifier in stream_names:
            if scope.current_stream is None or stream_names[scope.current_stream] != node.qualifier:
                return self.fail(
                    "E214", node.span, f"the current event is not from `{node.qualifier}`"
                )
            return self._name(ast.Name(node.name, node.span))
        return self.fail("E202", node.span, f"unknown stage or stream `{node.qualifier}`")

    # ------------------------------------------------------------------ aggregates
    def _aggregate(
        self, kind: ir.AggKind, stage: str, fieldname: str | None, span: Span
    ) -> ir.Expr:
        scope = self.scope
        if stage not in scope.stage_index:
            return self.fail("E202", span, f"unknown stage `{stage}`")
        if stage not in scope.visible_stages:
            return self.fail(
                "E220", span, f"stage `{stage}` cannot have taken events before this condition"
            )
        stage_i = scope.stage_index[stage]
        if fieldname is None:
            return ir.StageAgg(ir.AggKind.COUNT, stage_i, ir.EVENT_COLUMN, T.INT)
        stream = scope.schema.streams[scope.stage_streams[stage]]
        if fieldname == stream.time_field or fieldname == "time":
            column, ftype = ir.TIME_COLUMN, T.TIMESTAMP
        else:
            try:
                col = scope.schema.column(stream.name, fieldname)
            except KeyError:
                return self.fail(
                    "E201", span, f"unknown field `{fieldname}` in stream `{stream.name}`"
                )
            column, ftype = scope.schema.columns.index(col), col.type
        if kind in (ir.AggKind.SUM, ir.AggKind.AVG) and not ftype.numeric:
            return self.fail("E215", span, f"{kind.value}() needs a number, not {ftype.value}")
        if kind in (ir.AggKind.MIN, ir.AggKind.MAX) and ftype is T.STRING:
            return self.fail(
                "E215", span, f"{kind.value}() needs a number or a time, not string (not ordered)"
            )
        result = {
            ir.AggKind.COUNT: T.INT,
            ir.AggKind.COUNT_DISTINCT: T.INT,
            ir.AggKind.AVG: T.FLOAT,
        }.get(kind, ftype)
        return ir.StageAgg(kind, stage_i, column, result)

    def _call(self, node: ast.Call) -> ir.Expr:
        fn, args = node.function, node.args
        if fn in _AGGREGATES and not (fn in ("min", "max") and len(args) == 2):
            if len(args) != 1:
                return self.fail("E216", node.span, f"{fn}() takes one argument")
            arg = args[0]
            if fn == "count" and isinstance(arg, ast.Name):
                return self._aggregate(ir.AggKind.COUNT, arg.name, None, node.span)
            if not isinstance(arg, ast.Qualified):
                return self.fail(
                    "E216", node.span, f"{fn}() takes stage.field, as in {fn}(small.amount)"
                )
            return self._aggregate(ir.AggKind(fn), arg.qualifier, arg.name, node.span)
        lowered = [self.lower(a) for a in args]
        if fn in ("min", "max", "abs"):
            want = 2 if fn != "abs" else 1
            if len(args) != want:
                return self.fail("E216", node.span, f"{fn}() takes {want} argument(s)")
            for a, node_a in zip(lowered, args, strict=True):
                if not (a.type.numeric or a.type is T.NULL):
                    return self.fail("E215", _span(node_a), f"{fn}() needs a number, not {_t(a)}")
            return ir.Op(fn, tuple(lowered), _numeric_result(lowered))
        if fn == "distance_km":
            if len(args) != 4:
                return self.fail(
                    "E216", node.span, "distance_km(lat1, lon1, lat2, lon2) takes 4 arguments"
                )
            return ir.Op("geo_km", tuple(lowered), T.FLOAT)
        if fn in ir.STRING_FUNCTIONS:
            return self._string_function(node, lowered)
        return self.fail("E217", node.span, f"unknown function `{fn}`")

    def _string_function(self, node: ast.Call, lowered: list[ir.Expr]) -> ir.Expr:
        fn = node.function
        want = 2 if fn in _STRING_FUNCTIONS_WITH_NEEDLE else 1
        if len(lowered) != want:
            return self.fail("E216", node.span, f"{fn}() takes {want} argument(s)")
        if lowered[0].type not in (T.STRING, T.NULL):
            return self.fail(
                "E215", _span(node.args[0]), f"{fn}() needs a string, not {_t(lowered[0])}"
            )
        params: tuple[ir.ConstValue, ...] = ()
        if want == 2:
            needle = lowered[1]
            if not (isinstance(needle, ir.Const) and needle.type is T.STRING):
                return self.fail(
                    "E218",
                    _span(node.args[1]),
                    f"the second argument of {fn}() must be a string literal or constant",
                )
            params = (needle.value,)
        return ir.Op(fn, (lowered[0],), ir.STRING_FUNCTIONS[fn], params)

    # ------------------------------------------------------------------ operators
    def _lookup(self, node: ast.Lookup) -> ir.Expr:
        const = self.scope.consts.get(node.table)
        if const is None or not isinstance(const.value, ast.MapLiteral):
            return self.fail("E219", node.span, f"`{node.table}` is not a lookup table")
        key = self.lower(node.key)
        entries = tuple((k.value, v.value) for k, v in const.value.entries)
        value_types = {literal_type(v) for _, v in entries} - {T.NULL}
        if len(value_types) > 1:
            return self.fail("E221", const.span, f"the values of table `{node.table}` mix types")
        index = self.scope.table_index.get(node.table)
        if index is None:
            index = len(self.scope.tables)
            self.scope.tables.append(entries)  # type: ignore[arg-type]
            self.scope.table_index[node.table] = index
        result = value_types.pop() if value_types else T.NULL
        return ir.Op("lookup", (key,), result, (index,))

    def _unary(self, node: ast.Unary) -> ir.Expr:
        operand = self.lower(node.operand)
        if node.op == "not":
            if operand.type not in (T.BOOL, T.NULL):
                return self.fail("E215", node.span, f"`not` needs true or false, not {_t(operand)}")
            return ir.Op("not", (operand,), T.BOOL)
        if not (operand.type.numeric or operand.type is T.NULL):
            return self.fail("E215", node.span, f"`-` needs a number, not {_t(operand)}")
        return ir.Op("neg", (operand,), operand.type)

    def _binary(self, node: ast.Binary) -> ir.Expr:
        left, right = self.lower(node.left), self.lower(node.right)
        if _NULL in (left, right) and node.op not in ("==", "!="):
            return _NULL if node.op not in ("and", "or") else ir.Op(node.op, (left, right), T.BOOL)
        if node.op in ("and", "or"):
            for side, sub in ((left, node.left), (right, node.right)):
                if side.type not in (T.BOOL, T.NULL):
                    self.fail(
                        "E215", _span(sub), f"`{node.op}` needs true or false, not {_t(side)}"
                    )
            return ir.Op(node.op, (left, right), T.BOOL)
        if node.op in ir.COMPARISONS:
            if T.STRING in (left.type, right.type) and node.op not in ("==", "!="):
                return self.fail(
                    "E222",
                    node.span,
                    f"strings compare only with == and != (or `in`), not {node.op}: "
                    "at run time they are interned ids, not ordered text",
                )
            if not _comparable(left.type, right.type, node.op):
                return self.fail(
                    "E222", node.span, f"cannot compare {_t(left)} with {_t(right)} using {node.op}"
                )
            return ir.Op(node.op, (left, right), T.BOOL)
        result = _arithmetic_type(node.op, left.type, right.type)
        if result is None:
            return self.fail(
                "E222", node.span, f"cannot apply {node.op} to {_t(left)} and {_t(right)}"
            )
        return ir.Op(node.op, (left, right), result)

    def _member(self, node: ast.Member) -> ir.Expr:
        operand = self.lower(node.operand)
        if isinstance(node.target, ast.Name):
            const = self.scope.consts.get(node.target.name)
            if const is None or not isinstance(const.value, ast.ListLiteral):
                return self.fail(
                    "E219", node.target.span, f"`{node.target.name}` is not a list constant"
                )
            items = const.value.items
        else:
            items = node.target.items
        values = tuple(i.value for i in items if not isinstance(i.value, ast.Duration))
        for item in items:
            if not _comparable(operand.type, literal_type(item.value), "=="):
                self.fail("E222", item.span, f"list item {item.value!r} cannot equal {_t(operand)}")
        member = ir.Op("in", (operand,), T.BOOL, values)
        return ir.Op("not", (member,), T.BOOL) if node.negated else member

    def _between(self, node: ast.Between) -> ir.Expr:
        low = ast.Binary(">=", node.operand, node.low, node.span)
        high = ast.Binary("<=", node.operand, node.high, node.span)
        both = self._binary(ast.Binary("and", low, high, node.span))
        return ir.Op("not", (both,), T.BOOL) if node.negated else both

    def _isnull(self, node: ast.IsNull) -> ir.Expr:
        test = ir.Op("is_null", (self.lower(node.operand),), T.BOOL)
        return ir.Op("not", (test,), T.BOOL) if node.negated else test


def _span(node: ast.Expr) -> Span:
    return node.span


def _t(node: ir.Expr) -> str:
    return node.type.value


def _numeric_result(args: list[ir.Expr]) -> ir.Type:
    types = {a.type for a in args} - {T.NULL}
    if T.FLOAT in types:
        return T.FLOAT
    return types.pop() if len(types) == 1 else T.INT


def _comparable(a: ir.Type, b: ir.Type, op: str) -> bool:
    if T.NULL in (a, b):
        return True
    if a == b:
        return op in ("==", "!=") or a is not T.BOOL
    numeric_plain = {T.INT, T.FLOAT}
    return a in numeric_plain and b in numeric_plain


def _arithmetic_type(op: str, a: ir.Type, b: ir.Type) -> ir.Type | None:
    plain = {T.INT, T.FLOAT}
    if a in plain and b in plain:
        if op == "/" or T.FLOAT in (a, b):
            return T.FLOAT
        return T.INT
    if op == "-" and a is T.TIMESTAMP and b is T.TIMESTAMP:
        return T.DURATION
    if op in ("+", "-") and a is T.TIMESTAMP and b is T.DURATION:
        return T.TIMESTAMP
    if op in ("+", "-") and a is T.DURATION and b is T.DURATION:
        return T.DURATION
    if op in ("*", "/") and a is T.DURATION and b in plain:
        return T.DURATION
    return None
