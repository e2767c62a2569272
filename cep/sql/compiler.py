"""Compile a MATCH_RECOGNIZE clause into an `nfa` row pattern query.

The pattern becomes a `nfa.rowpattern.Program` whose instruction order is the preference
order; DEFINE conditions and MEASURES become typed `nfa.rowpattern_expr` trees. Names are
resolved here (columns, pattern variables, SUBSET unions) and every problem is collected and
raised once as `RuleCompileError` (codes E21x), each with the span of the offending text.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from cep.errors import Diagnostic, RuleCompileError, Severity, Span
from cep.sql import ast
from nfa import rowpattern_expr as rx
from nfa.rowpattern import Instr, Op, Program
from nfa.rowpattern_run import RowPatternQuery, RowsPerMatch, Skip

_NAVIGATION = {"first", "last", "prev", "next"}
_SCALARS = {"abs", "lower", "upper", "length", "concat", "coalesce", "if"}
_ROWS = {
    ast.RowsPerMatch.ONE: RowsPerMatch.ONE,
    ast.RowsPerMatch.ALL_SHOW_EMPTY: RowsPerMatch.ALL_SHOW_EMPTY,
    ast.RowsPerMatch.ALL_OMIT_EMPTY: RowsPerMatch.ALL_OMIT_EMPTY,
    ast.RowsPerMatch.ALL_WITH_UNMATCHED: RowsPerMatch.ALL_WITH_UNMATCHED,
}
_SKIP = {
    ast.SkipKind.PAST_LAST_ROW: Skip.PAST_LAST_ROW,
    ast.SkipKind.TO_NEXT_ROW: Skip.TO_NEXT_ROW,
    ast.SkipKind.TO_FIRST: Skip.TO_FIRST,
    ast.SkipKind.TO_LAST: Skip.TO_LAST,
}


def sql_type(name: str) -> rx.RType:
    """The evaluator type of an SQL type name such as `integer` or `varchar(12)`."""
    base = name.split("(", 1)[0].strip().lower()
    if base in ("integer", "bigint", "smallint", "tinyint"):
        return rx.RType.BIGINT
    if base in ("double", "real"):
        return rx.RType.DOUBLE
    if base in ("varchar", "char"):
        return rx.RType.VARCHAR
    if base == "boolean":
        return rx.RType.BOOLEAN
    if base.startswith("array"):
        return rx.RType.ARRAY
    return rx.RType.UNKNOWN


@dataclass(frozen=True, slots=True)
class CompiledMatchRecognize:
    """The `nfa` query plus the column positions the SQL layer needs to lay out output."""

    query: RowPatternQuery
    partition: tuple[int, ...]
    order: tuple[tuple[int, bool], ...]  # (column, descending)
    measure_names: tuple[str, ...]
    within_ms: int | None = None  # streaming: WITHIN
    absent: int | None = None  # streaming: the label id of NOT FOLLOWED BY


class _Problems(Exception):
    pass


class ExprCompiler:
    """Resolves names and builds typed expressions; collects diagnostics."""

    def __init__(
        self,
        columns: Sequence[tuple[str, rx.RType]],
        labels: dict[str, int] | None = None,
        subsets: dict[str, frozenset[int]] | None = None,
        plain: bool = False,
    ):
        self.columns = {name: (i, t) for i, (name, t) in reversed(list(enumerate(columns)))}
        self.labels = labels or {}
        self.subsets = subsets or {}
        self.plain = plain  # outer SELECT: columns are plain, no pattern variables
        self.diagnostics: list[Diagnostic] = []

    def fail(self, span: Span, message: str, code: str = "E210") -> _Problems:
        self.diagnostics.append(Diagnostic(code, Severity.ERROR, span, message))
        return _Problems(message)

    def label_set(self, name: str, span: Span) -> frozenset[int]:
        for candidate in (name, name.upper()):
            if candidate in self.labels:
                return frozenset({self.labels[candidate]})
            if candidate in self.subsets:
                return self.subsets[candidate]
        raise self.fail(span, f"unknown pattern variable {name}", "E211")

    def compile(self, e: ast.Expr, inner: set[str] | None = None) -> rx.RExpr:
        """`inner` collects the variables of the enclosing navigation or aggregate."""
        if isinstance(e, ast.Literal):
            kind = {"int": rx.RType.BIGINT, "string": rx.RType.VARCHAR, "bool": rx.RType.BOOLEAN}
            return rx.Const(e.value, kind.get(e.kind, rx.RType.DOUBLE))
        if isinstance(e, ast.ColumnRef):
            return self._column(e, inner)
        if isinstance(e, ast.Call):
            return self._call(e, inner)
        if isinstance(e, ast.Unary):
            arg = self.compile(e.arg, inner)
            op = "neg" if e.op == "-" else "not"
            return rx.Call(op, (arg,), rx.RType.BOOLEAN if op == "not" else arg.type)
        if isinstance(e, ast.Binary):
            left, right = self.compile(e.left, inner), self.compile(e.right, inner)
            return rx.Call(e.op, (left, right), _binary_type(e.op, left.type, right.type))
        if isinstance(e, ast.InList):
            args = (self.compile(e.arg, inner), *(self.compile(i, inner) for i in e.items))
            return _negate(rx.Call("in", args, rx.RType.BOOLEAN), e.negated)
        if isinstance(e, ast.Like):
            args = (self.compile(e.arg, inner), self.compile(e.pattern, inner))
            return _negate(rx.Call("like", args, rx.RType.BOOLEAN), e.negated)
        if isinstance(e, ast.IsNull):
            call = rx.Call("is_null", (self.compile(e.arg, inner),), rx.RType.BOOLEAN)
            return _negate(call, e.negated)
        if isinstance(e, ast.Between):
            args = tuple(self.compile(x, inner) for x in (e.arg, e.low, e.high))
            return _negate(rx.Call("between", args, rx.RType.BOOLEAN), e.negated)
        if isinstance(e, ast.Cast):
            target = sql_type(e.type_name)
            if target in (rx.RType.UNKNOWN, rx.RType.ARRAY):
                raise self.fail(e.span, f"CAST to {e.type_name} is not supported", "E213")
            op = "cast_" + {"bigint": "bigint", "double": "double"}.get(target.value, target.value)
            return rx.Call(op, (self.compile(e.arg, inner),), target)
        if isinstance(e, ast.ArrayCtor):
            items = tuple(self.compile(i, inner) for i in e.items)
            return rx.Call("array", items, rx.RType.ARRAY)
        raise self.fail(Span.unknown(), "a row value is not an expression", "E213")

    def _column(self, e: ast.ColumnRef, inner: set[str] | None) -> rx.RExpr:
        if e.name not in self.columns:
            raise self.fail(e.span, f"unknown column {e.name}", "E212")
        index, type_ = self.columns[e.name]
        col = rx.Col(index, type_)
        if self.plain:
            return col
        if inner is not None:
            if e.label is not None:
                self.label_set(e.label, e.span)
                inner.add(e.label)
            return col
        labels = self.label_set(e.label, e.span) if e.label is not None else None
        return rx.Nav(col, labels, True, 0, 0, False, type_)

    def _call(self, e: ast.Call, inner: set[str] | None) -> rx.RExpr:
        name, final = e.name, e.semantics == "FINAL"
        if name == "match_number":
            return rx.MatchNumber()
        if name == "classifier":
            label = _label_arg(e)
            if inner is not None:
                if label is not None:
                    self.label_set(label, e.span)
                    inner.add(label)
                return rx.Classifier()
            labels = self.label_set(label, e.span) if label is not None else None
            return rx.Nav(rx.Classifier(), labels, True, 0, 0, False, rx.RType.VARCHAR)
        if name in _NAVIGATION:
            return self._navigation(e, final)
        if name in rx.AGGREGATES:
            collected: set[str] = set()
            if e.star_label is not None:
                collected.add(e.star_label)
            args = tuple(self.compile(a, collected) for a in e.args)
            labels = self._labels_of(collected, e.span)
            return rx.Agg(name, args, labels, final, _agg_type(name, args))
        if name in _SCALARS:
            args = tuple(self.compile(a, inner) for a in e.args)
            return rx.Call(name, args, _scalar_type(name, args))
        raise self.fail(e.span, f"unsupported function {name}()", "E214")

    def _navigation(self, e: ast.Call, final: bool) -> rx.RExpr:
        if not 1 <= len(e.args) <= 2:
            raise self.fail(e.span, f"{e.name.upper()} takes an expression and an offset")
        offset = 0 if e.name in ("first", "last") else 1
        if len(e.args) == 2:
            literal = e.args[1]
            if not (isinstance(literal, ast.Literal) and literal.kind == "int"):
                raise self.fail(e.span, "a navigation offset must be an integer literal")
            offset = int(literal.value)  # type: ignore[arg-type]
        target = e.args[0]
        if e.name in ("prev", "next"):
            step = -offset if e.name == "prev" else offset
            if isinstance(target, ast.Call) and target.name in ("first", "last"):
                nav = self._navigation(target, target.semantics == "FINAL")
                assert isinstance(nav, rx.Nav)
                return rx.Nav(
                    nav.expr, nav.labels, nav.last, nav.logical_offset, step, nav.final, nav.type
                )
            collected: set[str] = set()
            body = self.compile(target, collected)
            return rx.Nav(body, self._labels_of(collected, e.span), True, 0, step, final, body.type)
        collected = set()
        body = self.compile(target, collected)
        labels = self._labels_of(collected, e.span)
        return rx.Nav(body, labels, e.name == "last", offset, 0, final, body.type)

    def _labels_of(self, names: set[str], span: Span) -> frozenset[int] | None:
        if not names:
            return None
        sets = {self.label_set(n, span) for n in names}
        if len(sets) > 1:
            raise self.fail(span, "an aggregate or navigation reads more than one pattern variable")
        return sets.pop()


def _label_arg(e: ast.Call) -> str | None:
    if not e.args:
        return None
    arg = e.args[0]
    return arg.name if isinstance(arg, ast.ColumnRef) and arg.label is None else None


def _negate(expr: rx.RExpr, negated: bool) -> rx.RExpr:
    return rx.Call("not", (expr,), rx.RType.BOOLEAN) if negated else expr


def _binary_type(op: str, left: rx.RType, right: rx.RType) -> rx.RType:
    if op in ("and", "or", "=", "<>", "<", "<=", ">", ">="):
        return rx.RType.BOOLEAN
    if op == "||":
        return rx.RType.ARRAY if rx.RType.ARRAY in (left, right) else rx.RType.VARCHAR
    return rx.RType.DOUBLE if rx.RType.DOUBLE in (left, right) else left


def _agg_type(name: str, args: tuple[rx.RExpr, ...]) -> rx.RType:
    fixed = {"count": rx.RType.BIGINT, "avg": rx.RType.DOUBLE, "array_agg": rx.RType.ARRAY}
    if name in ("bool_and", "bool_or"):
        return rx.RType.BOOLEAN
    return fixed.get(name, args[0].type if args else rx.RType.UNKNOWN)


def _scalar_type(name: str, args: tuple[rx.RExpr, ...]) -> rx.RType:
    if name in ("lower", "upper", "concat"):
        return rx.RType.VARCHAR
    if name == "length":
        return rx.RType.BIGINT
    if name == "if":
        return args[1].type if len(args) > 1 else rx.RType.UNKNOWN
    return args[0].type if args else rx.RType.UNKNOWN


def compile_pattern(pattern: ast.Pattern, labels: dict[str, int]) -> tuple[Instr, ...]:
    """The instructions of `pattern`, in preference order, ending with DONE."""
    code: list[Instr] = []

    def patch(at: int, a: int, b: int = 0) -> None:
        code[at] = Instr(code[at].op, a, b)

    def emit(p: ast.Pattern) -> None:
        if isinstance(p, ast.Label):
            code.append(Instr(Op.LABEL, labels[p.name]))
        elif isinstance(p, ast.Anchor):
            code.append(Instr(Op.START if p.start else Op.END))
        elif isinstance(p, ast.Concat):
            for item in p.items:
                emit(item)
        elif isinstance(p, ast.Alternation):
            jumps: list[int] = []
            for branch in p.items[:-1]:
                split = len(code)
                code.append(Instr(Op.SPLIT))
                emit(branch)
                jumps.append(len(code))
                code.append(Instr(Op.JUMP))
                patch(split, split + 1, len(code))
            emit(p.items[-1])
            for jump in jumps:
                patch(jump, len(code))
        elif isinstance(p, ast.Permute):
            orders = itertools.permutations(p.items)
            emit(ast.Alternation(tuple(ast.Concat(tuple(o)) for o in orders)))
        elif isinstance(p, ast.Exclusion):
            code.append(Instr(Op.BEGIN_EXCLUDE))
            emit(p.body)
            code.append(Instr(Op.END_EXCLUDE))
        elif isinstance(p, ast.Quantified):
            emit_quantified(p)

    def emit_quantified(p: ast.Quantified) -> None:
        for _ in range(p.low):
            emit(p.body)
        if p.high is None:
            loop = len(code)
            code.append(Instr(Op.SPLIT))
            emit(p.body)
            code.append(Instr(Op.JUMP, loop))
            body, leave = loop + 1, len(code)
            patch(loop, *((body, leave) if p.greedy else (leave, body)))
            return
        splits: list[int] = []
        for _ in range(p.high - p.low):
            splits.append(len(code))
            code.append(Instr(Op.SPLIT))
            emit(p.body)
        leave = len(code)
        for split in splits:
            patch(split, *((split + 1, leave) if p.greedy else (leave, split + 1)))

    emit(pattern)
    code.append(Instr(Op.DONE))
    return tuple(code)


def pattern_labels(pattern: ast.Pattern) -> list[str]:
    """Variables of the pattern in order of first appearance."""
    if isinstance(pattern, ast.Label):
        return [pattern.name]
    out: list[str] = []
    for child in ast.sub_patterns(pattern):
        out.extend(n for n in pattern_labels(child) if n not in out)
    return out


def compile_match_recognize(
    mr: ast.MatchRecognize, columns: Sequence[str], types: Sequence[str], streaming: bool = False
) -> CompiledMatchRecognize:
    """Compile the clause for an input relation with these column names and SQL types.

    `streaming` admits the extensions WITHIN and NOT FOLLOWED BY, which only the streaming
    engine (`nfa.rowpattern_stream`) runs; the bounded runner rejects them (E215).
    """
    names = pattern_labels(mr.pattern)
    names += [d.label for d in mr.definitions if d.label not in names]
    labels = {n: i for i, n in enumerate(names)}
    typed = [(c.lower(), sql_type(t)) for c, t in zip(columns, types, strict=True)]
    exprs = ExprCompiler(typed, labels)
    for s in mr.subsets:
        members = [exprs.label_set(m, s.span) for m in s.members]
        exprs.subsets[s.name] = frozenset().union(*members)
    defines: list[rx.RExpr | None] = [None] * len(names)
    measures: list[rx.RExpr] = []
    for d in mr.definitions:
        with contextlib.suppress(_Problems):
            defines[labels[d.label]] = exprs.compile(d.condition)
    for m in mr.measures:
        with contextlib.suppress(_Problems):
            measures.append(exprs.compile(m.expr))
    partition = tuple(_column_index(exprs, e) for e in mr.partition_by)
    order = tuple((_column_index(exprs, s.expr), s.descending) for s in mr.order_by)
    absent: int | None = None
    if not streaming and (mr.absent is not None or mr.within_ms is not None):
        exprs.fail(mr.span, "WITHIN and NOT FOLLOWED BY run only in the streaming engine", "E215")
    elif mr.absent is not None:
        absent = labels.get(mr.absent)
        if absent is None or defines[absent] is None:
            exprs.fail(mr.span, f"NOT FOLLOWED BY {mr.absent} needs a DEFINE for it", "E236")
        elif mr.absent in pattern_labels(mr.pattern):
            exprs.fail(mr.span, f"{mr.absent} is both in the pattern and absent", "E236")
        if mr.within_ms is None:
            exprs.fail(mr.span, "NOT FOLLOWED BY at the end of a pattern needs WITHIN", "E236")
    skip_labels: frozenset[int] = frozenset()
    if mr.skip.label is not None:
        with contextlib.suppress(_Problems):
            skip_labels = exprs.label_set(mr.skip.label, mr.skip.span)
    if exprs.diagnostics:
        raise RuleCompileError(exprs.diagnostics)
    history_free = not any(d is not None and rx.reads_history(d) for d in defines)
    code = compile_pattern(mr.pattern, labels)
    program = Program(code, tuple(names), tuple(defines), history_free)
    query = RowPatternQuery(
        program, tuple(measures), _ROWS[mr.rows_per_match], _SKIP[mr.skip.kind], skip_labels
    )
    measure_names = tuple(m.name for m in mr.measures)
    return CompiledMatchRecognize(query, partition, order, measure_names, mr.within_ms, absent)


def _column_index(exprs: ExprCompiler, e: ast.Expr) -> int:
    if isinstance(e, ast.ColumnRef) and e.name in exprs.columns:
        return exprs.columns[e.name][0]
    exprs.fail(getattr(e, "span", Span.unknown()), "PARTITION BY and ORDER BY take input columns")
    return 0
