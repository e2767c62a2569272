"""Translate the SQL expressions of a rule in the NFA subset into DSL expressions.

`cep.sql.nfa_subset` hands a rule whose parse is unique to the DSL compiler; this module
rewrites its DEFINE conditions, MEASURES and SELECT items as `cep.ast` expressions with the
same value on every row and match. Only constructs whose DSL meaning provably equals the
SQL one are translated; anything else raises `Untranslatable`, and the rule stays on the
row-pattern engine. What is translated, and why it is the same:

- constants (not NULL), `and`/`or`/`not` (three-valued in both), comparisons, `+ - *`,
  unary minus, `IN` with constants, `BETWEEN`, `IS [NOT] NULL`, `abs`, `lower`, `upper`,
  `length`. Not `/` and `%` (SQL divides integers towards zero and fails on zero; the DSL
  gives a float, or null), nor `||`, LIKE, CAST, CASE-like functions;
- in DEFINE of V: `x` and `V.x` are the current row (the DSL's current event);
  `W.x`/`LAST(W.x)`, `FIRST(W.x)`, `count(W.*)`, `count/sum/avg/min/max(W.x)` for a W
  *before* V (not an alternative of V) read the rows mapped to W so far, which are the
  events the partial match accepted into W (the DSL's iterative conditions); an
  alternative of V has no rows then, and is refused; `count(V.*)` counts the current row
  too, so it becomes `count(V) + 1`. Other reads of V's own rows differ (the DSL excludes
  the current event) and are refused, as are PREV/NEXT, offsets, MATCH_NUMBER();
- in MEASURES (ONE ROW PER MATCH: evaluated at the last row, so RUNNING is FINAL): the same
  reads over any variable; a plain `x` is the last row's, which the last variable (a fixed
  count) holds, and CLASSIFIER() its name (neither when the last element is an alternation:
  which variable holds the last row varies); `FIRST(x)` the first variable's when it always
  has a row; `count(*)` (and Trino's `count()`) the sum of the variables' counts;
- in the SELECT list: the key column and the measures, by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from cep import ast as dsl
from cep.errors import Span
from cep.sql import ast

_COMPARISONS = {"=": "==", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_ARITHMETIC = ("+", "-", "*")
_SCALARS = ("abs", "lower", "upper", "length")
_AGGREGATES = ("count", "sum", "avg", "min", "max")


class Untranslatable(Exception):
    """A construct the DSL cannot express with the same meaning; `span` is where."""

    def __init__(self, span: Span, message: str):
        super().__init__(message)
        self.span = span
        self.message = message


@dataclass(frozen=True)
class Scope:
    """What names mean in one translated expression.

    `variables` lists the pattern variables in order with their maximum counts (None:
    unbounded), `slots` the pattern element of each (alternatives share one; empty: each
    its own); `current` is the variable whose DEFINE this is (None in MEASURES and
    SELECT); `first` is the first variable when it always has a row, `last` the last one
    (None when the last element is an alternation: the last row's variable varies).
    `plain` maps SELECT-list names (the key column, the measures) to their expressions.
    """

    variables: tuple[tuple[str, int | None], ...]
    fields: dict[str, str]  # SQL column name -> stream field name
    time_field: str | None
    last: str | None
    first: str | None = None
    current: str | None = None
    plain: dict[str, dsl.Expr] | None = None
    slots: tuple[int, ...] = ()
    order: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        slots = self.slots or range(len(self.variables))
        order = {v: slot for (v, _), slot in zip(self.variables, slots, strict=True)}
        object.__setattr__(self, "order", order)

    def defining(self, name: str) -> Scope:
        """This scope inside the DEFINE of `name`."""
        return replace(self, current=name)

    def selecting(self, plain: dict[str, dsl.Expr]) -> Scope:
        """This scope in the SELECT list, whose names are `plain`'s."""
        return replace(self, first=None, current=None, plain=plain)


def translate(e: ast.Expr, scope: Scope) -> dsl.Expr:
    """The DSL expression with the meaning of `e` in `scope`, or `Untranslatable`."""
    span = getattr(e, "span", Span.unknown())
    if isinstance(e, ast.Literal):
        if e.value is None:
            raise Untranslatable(span, "a NULL constant")
        return dsl.Literal(e.value, span)
    if isinstance(e, ast.ColumnRef):
        return _column(e, scope)
    if isinstance(e, ast.Call):
        return _call(e, scope)
    if isinstance(e, ast.Unary):
        return dsl.Unary(e.op, translate(e.arg, scope), span)
    if isinstance(e, ast.Binary):
        op = _COMPARISONS.get(e.op, e.op)
        if op not in (*_COMPARISONS.values(), *_ARITHMETIC, "and", "or"):
            raise Untranslatable(span, f"the operator {e.op}")
        return dsl.Binary(op, translate(e.left, scope), translate(e.right, scope), span)
    if isinstance(e, ast.InList):
        items = []
        for item in e.items:
            if not isinstance(item, ast.Literal) or item.value is None:
                raise Untranslatable(span, "IN with an item that is not a constant")
            items.append(dsl.Literal(item.value, item.span))
        target = dsl.ListLiteral(tuple(items), span)
        return dsl.Member(translate(e.arg, scope), target, e.negated, span)
    if isinstance(e, ast.IsNull):
        return dsl.IsNull(translate(e.arg, scope), e.negated, span)
    if isinstance(e, ast.Between):
        low, high = translate(e.low, scope), translate(e.high, scope)
        return dsl.Between(translate(e.arg, scope), low, high, e.negated, span)
    raise Untranslatable(span, type(e).__name__.upper())


def _field(name: str, span: Span, scope: Scope, qualified: bool) -> str:
    if name not in scope.fields:
        raise Untranslatable(span, f"the column {name}")
    found = scope.fields[name]
    if qualified and found == "time" and found != scope.time_field:
        # The DSL reads `stage.time` as event time, not as a field named `time`.
        raise Untranslatable(span, "a column named `time` that is not the event time")
    return found


def _column(e: ast.ColumnRef, scope: Scope) -> dsl.Expr:
    if scope.plain is not None:
        if e.name not in scope.plain:
            raise Untranslatable(e.span, f"the column {e.name} in the SELECT list")
        return scope.plain[e.name]
    if e.label is None and scope.current is None:
        return dsl.Qualified(_last(e.span, scope), _field(e.name, e.span, scope, True), e.span)
    if e.label is None or e.label == scope.current:
        return dsl.Name(_field(e.name, e.span, scope, False), e.span)
    label = _earlier(e.label, e.span, scope)
    return dsl.Qualified(label, _field(e.name, e.span, scope, True), e.span)


def _last(span: Span, scope: Scope) -> str:
    if scope.last is None:
        raise Untranslatable(span, "the last row when the last element is an alternation")
    return scope.last


def _earlier(label: str, span: Span, scope: Scope) -> str:
    """A variable this expression may read the rows of: any in MEASURES, an earlier one
    in DEFINE."""
    if label not in scope.order:
        raise Untranslatable(span, f"{label}, which is not a variable of the pattern")
    if scope.current is not None and scope.order[label] >= scope.order[scope.current]:
        raise Untranslatable(span, f"rows of {label} in the DEFINE of {scope.current}")
    return label


def _call(e: ast.Call, scope: Scope) -> dsl.Expr:
    name, span = e.name, e.span
    if scope.plain is not None and name not in _SCALARS:
        raise Untranslatable(span, f"{name.upper()}() in the SELECT list")
    if e.semantics == "FINAL" and scope.current is not None:
        raise Untranslatable(span, "FINAL in DEFINE")
    if name in _SCALARS:
        return dsl.Call(name, tuple(translate(a, scope) for a in e.args), span)
    if name == "classifier" and not e.args:
        return dsl.Literal(scope.current or _last(span, scope), span)
    if name in ("first", "last"):
        return _navigation(e, scope)
    if name in _AGGREGATES:
        return _aggregate(e, scope)
    raise Untranslatable(span, f"{name.upper()}()")


def _navigation(e: ast.Call, scope: Scope) -> dsl.Expr:
    if len(e.args) == 2 and not (isinstance(e.args[1], ast.Literal) and e.args[1].value == 0):
        raise Untranslatable(e.span, f"{e.name.upper()} with an offset")
    arg = e.args[0] if e.args else None
    if not isinstance(arg, ast.ColumnRef) or len(e.args) > 2:
        raise Untranslatable(e.span, f"{e.name.upper()} of an expression")
    if e.name == "last":
        return _column(arg, scope)
    if arg.label is None and scope.current is None:
        if scope.first is None:
            raise Untranslatable(e.span, "FIRST(x) when the first variable may have no row")
        qualified = dsl.Qualified(scope.first, _field(arg.name, arg.span, scope, True), arg.span)
        return dsl.Call("first", (qualified,), e.span)
    if arg.label is None or arg.label == scope.current:
        raise Untranslatable(e.span, "FIRST of the variable being defined")
    label = _earlier(arg.label, arg.span, scope)
    qualified = dsl.Qualified(label, _field(arg.name, arg.span, scope, True), arg.span)
    return dsl.Call("first", (qualified,), e.span)


def _aggregate(e: ast.Call, scope: Scope) -> dsl.Expr:
    span = e.span
    if e.name == "count" and not e.args and not e.star:
        e = replace(e, star=True)  # `count()` is `count(*)`
    if e.star:
        if e.name != "count":
            raise Untranslatable(span, f"{e.name}(*)")
        if e.star_label is None:
            if scope.current is not None:
                raise Untranslatable(span, "count(*) in DEFINE")
            return _total(
                [dsl.Call("count", (dsl.Name(v, span),), span) for v, _ in scope.variables]
            )
        if e.star_label == scope.current:
            maximum = dict(scope.variables)[scope.current]
            if maximum == 1:
                return dsl.Literal(1, span)
            count = dsl.Call("count", (dsl.Name(scope.current, span),), span)
            return dsl.Binary("+", count, dsl.Literal(1, span), span)
        label = _earlier(e.star_label, span, scope)
        return dsl.Call("count", (dsl.Name(label, span),), span)
    if len(e.args) != 1 or not isinstance(e.args[0], ast.ColumnRef):
        raise Untranslatable(span, f"{e.name}() of an expression")
    arg = e.args[0]
    if arg.label is None:
        if e.name != "count" or scope.current is not None:
            raise Untranslatable(span, f"{e.name}() over every row of the match")
        name = _field(arg.name, arg.span, scope, True)
        counts = [
            dsl.Call("count", (dsl.Qualified(v, name, arg.span),), span) for v, _ in scope.variables
        ]
        return _total(counts)
    if arg.label == scope.current:
        raise Untranslatable(span, f"{e.name}() over the variable being defined")
    label = _earlier(arg.label, arg.span, scope)
    qualified = dsl.Qualified(label, _field(arg.name, arg.span, scope, True), arg.span)
    return dsl.Call(e.name, (qualified,), span)


def _total(parts: Sequence[dsl.Expr]) -> dsl.Expr:
    total = parts[0]
    for part in parts[1:]:
        total = dsl.Binary("+", total, part, _span(part))
    return total


def _span(e: dsl.Expr) -> Span:
    return e.span
