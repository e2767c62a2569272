"""Parse MATCH_RECOGNIZE text (a whole query, the clause alone, or a SELECT list).

The grammar is `match_recognize.lark` (LALR, contextual lexer); a Transformer turns the
tree into the frozen dataclasses of `cep.sql.ast`, each with its span. A syntax error is
raised as `RuleSyntaxError` with one diagnostic (code E201): file, line, column, a caret
under the offending text and the tokens the grammar expected there.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import lark
from lark import Token, Transformer, v_args
from lark.tree import Meta

from cep.errors import Diagnostic, RuleSyntaxError, Severity, Span
from cep.sql import ast
from cep.sql.diagnostics import syntax_diagnostic

_STARTS = ["query", "match_recognize", "select_list", "expr", "pattern"]
_UNITS = {"SECOND": 1000, "MINUTE": 60_000, "HOUR": 3_600_000, "DAY": 86_400_000}


@cache
def _parser() -> lark.Lark:
    grammar = resources.files("cep.sql").joinpath("match_recognize.lark").read_text("utf-8")
    return lark.Lark(
        grammar, parser="lalr", start=_STARTS, propagate_positions=True, maybe_placeholders=True
    )


def parse_query(text: str, file: str = "<sql>") -> ast.Query:
    """Parse `SELECT ... FROM (VALUES ...) t(cols) MATCH_RECOGNIZE (...) AS m`."""
    result: ast.Query = _parse(text, "query", file)
    return result


def parse_match_recognize(text: str, file: str = "<sql>") -> ast.MatchRecognize:
    """Parse the clause alone, from the keyword MATCH_RECOGNIZE to its closing parenthesis."""
    result: ast.MatchRecognize = _parse(text, "match_recognize", file)
    return result


def parse_select_list(text: str, file: str = "<sql>") -> tuple[ast.SelectItem, ...] | None:
    """Parse the items between SELECT and FROM; None for `*`."""
    result: tuple[ast.SelectItem, ...] | None = _parse(text, "select_list", file)
    return result


def parse_expr(text: str, file: str = "<sql>") -> ast.Expr:
    result: ast.Expr = _parse(text, "expr", file)
    return result


def parse_pattern(text: str, file: str = "<sql>") -> ast.Pattern:
    result: ast.Pattern = _parse(text, "pattern", file)
    return result


def _parse(text: str, start: str, file: str) -> Any:
    try:
        tree = _parser().parse(text, start=start)
    except lark.exceptions.UnexpectedInput as exc:
        raise RuleSyntaxError([syntax_diagnostic(exc, file, _parser())], {file: text}) from None
    try:
        return _ToAst(file).transform(tree)
    except lark.exceptions.VisitError as exc:
        if isinstance(exc.orig_exc, _NodeError):
            raise RuleSyntaxError([exc.orig_exc.diagnostic], {file: text}) from None
        raise


class _NodeError(Exception):
    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def _label(token: Token) -> str:
    """Pattern variable name: unquoted folds to upper case, quoted keeps its text."""
    text = str(token)
    if token.type == "QUOTED":
        return text[1:-1].replace('""', '"')
    return text.upper()


def _name(token: Token) -> str:
    text = str(token)
    if token.type == "QUOTED":
        return text[1:-1].replace('""', '"')
    return text.lower()


@v_args(meta=True)
class _ToAst(Transformer[Token, Any]):
    """Builds AST nodes from the parse tree; each node gets the span of its text."""

    def __init__(self, file: str):
        super().__init__()
        self.file = file

    def _span(self, meta: Meta) -> Span:
        if getattr(meta, "empty", True):
            return Span.unknown(self.file)
        return Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column)

    def _error(self, meta: Meta, message: str) -> _NodeError:
        return _NodeError(Diagnostic("E202", Severity.ERROR, self._span(meta), message))

    # ------------------------------------------------------------ query
    def query(self, meta: Meta, c: list[Any]) -> ast.Query:
        alias = _name(c[3]) if c[3] is not None else None
        return ast.Query(c[0], c[1], c[2], alias)

    def select_star(self, meta: Meta, c: list[Any]) -> None:
        return None

    def select_list(self, meta: Meta, c: list[Any]) -> tuple[ast.SelectItem, ...]:
        return tuple(c)

    def select_item(self, meta: Meta, c: list[Any]) -> ast.SelectItem:
        return ast.SelectItem(c[0], _name(c[1]) if c[1] is not None else None)

    def relation(self, meta: Meta, c: list[Any]) -> ast.Values:
        *rows, alias, columns = c
        shaped = tuple(r.items if isinstance(r, ast.RowCtor) else (r,) for r in rows)
        return ast.Values(shaped, _name(alias) if alias is not None else None, tuple(columns or ()))

    def value_row(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return c[0]  # type: ignore[no-any-return]

    def named_relation(self, meta: Meta, c: list[Any]) -> ast.TableName:
        return ast.TableName(_name(c[0]), self._span(meta))

    def name_list(self, meta: Meta, c: list[Token]) -> list[str]:
        return [_name(t) for t in c]

    # ------------------------------------------------------------ clause
    def match_recognize(self, meta: Meta, c: list[Any]) -> ast.MatchRecognize:
        _, partition, order, measures, rows, skip, pattern, absent, within, subset, define = c
        return ast.MatchRecognize(
            pattern=pattern,
            partition_by=tuple(partition or ()),
            order_by=tuple(order or ()),
            measures=tuple(measures or ()),
            rows_per_match=rows or ast.RowsPerMatch.ONE,
            skip=skip or ast.AfterMatchSkip(ast.SkipKind.PAST_LAST_ROW),
            subsets=tuple(subset or ()),
            definitions=tuple(define or ()),
            absent=absent,
            within_ms=within,
            span=self._span(meta),
        )

    def partition_by(self, meta: Meta, c: list[Any]) -> list[Any]:
        return c

    def order_by(self, meta: Meta, c: list[Any]) -> list[Any]:
        return c

    def sort_item(self, meta: Meta, c: list[Any]) -> ast.SortItem:
        return ast.SortItem(c[0], c[1] is not None and str(c[1]).upper() == "DESC")

    def measures(self, meta: Meta, c: list[Any]) -> list[Any]:
        return c

    def measure(self, meta: Meta, c: list[Any]) -> ast.Measure:
        return ast.Measure(c[0], _name(c[1]), self._span(meta))

    def one_row(self, meta: Meta, c: list[Any]) -> ast.RowsPerMatch:
        return ast.RowsPerMatch.ONE

    def all_rows(self, meta: Meta, c: list[Any]) -> ast.RowsPerMatch:
        result: ast.RowsPerMatch = c[0] or ast.RowsPerMatch.ALL_SHOW_EMPTY
        return result

    def show_empty(self, meta: Meta, c: list[Any]) -> ast.RowsPerMatch:
        return ast.RowsPerMatch.ALL_SHOW_EMPTY

    def omit_empty(self, meta: Meta, c: list[Any]) -> ast.RowsPerMatch:
        return ast.RowsPerMatch.ALL_OMIT_EMPTY

    def with_unmatched(self, meta: Meta, c: list[Any]) -> ast.RowsPerMatch:
        return ast.RowsPerMatch.ALL_WITH_UNMATCHED

    def after_match_skip(self, meta: Meta, c: list[Any]) -> ast.AfterMatchSkip:
        skip: ast.AfterMatchSkip = c[0]
        return ast.AfterMatchSkip(skip.kind, skip.label, self._span(meta))

    def skip_past_last(self, meta: Meta, c: list[Any]) -> ast.AfterMatchSkip:
        return ast.AfterMatchSkip(ast.SkipKind.PAST_LAST_ROW)

    def skip_to_next(self, meta: Meta, c: list[Any]) -> ast.AfterMatchSkip:
        return ast.AfterMatchSkip(ast.SkipKind.TO_NEXT_ROW)

    def skip_to_first(self, meta: Meta, c: list[Any]) -> ast.AfterMatchSkip:
        return ast.AfterMatchSkip(ast.SkipKind.TO_FIRST, _label(c[0]))

    def skip_to_last(self, meta: Meta, c: list[Any]) -> ast.AfterMatchSkip:
        return ast.AfterMatchSkip(ast.SkipKind.TO_LAST, _label(c[0]))

    def within(self, meta: Meta, c: list[Token]) -> int:
        unit = str(c[1]).upper().rstrip("S")
        amount = str(c[0])[1:-1].strip()
        if unit not in _UNITS or not amount.isdigit():
            raise self._error(meta, "expected INTERVAL '<n>' SECOND|MINUTE|HOUR|DAY")
        return int(amount) * _UNITS[unit]

    def absence(self, meta: Meta, c: list[Token]) -> str:
        return _label(c[0])

    def subset(self, meta: Meta, c: list[Any]) -> list[Any]:
        return c

    def subset_item(self, meta: Meta, c: list[Token]) -> ast.Subset:
        return ast.Subset(_label(c[0]), tuple(_label(t) for t in c[1:]), self._span(meta))

    def define(self, meta: Meta, c: list[Any]) -> list[Any]:
        return c

    def definition(self, meta: Meta, c: list[Any]) -> ast.Definition:
        return ast.Definition(_label(c[0]), c[1], self._span(meta))

    # ------------------------------------------------------------ patterns
    def alternation(self, meta: Meta, c: list[Any]) -> ast.Pattern:
        if len(c) == 1:
            return c[0]  # type: ignore[no-any-return]
        return ast.Alternation(tuple(c), self._span(meta))

    def concatenation(self, meta: Meta, c: list[Any]) -> ast.Pattern:
        if len(c) == 1:
            return c[0]  # type: ignore[no-any-return]
        return ast.Concat(tuple(c), self._span(meta))

    def empty_pattern(self, meta: Meta, c: list[Any]) -> ast.Empty:
        return ast.Empty(self._span(meta))

    def pattern_label(self, meta: Meta, c: list[Token]) -> ast.Label:
        return ast.Label(_label(c[0]), self._span(meta))

    def exclusion(self, meta: Meta, c: list[Any]) -> ast.Exclusion:
        return ast.Exclusion(c[0], self._span(meta))

    def permute(self, meta: Meta, c: list[Any]) -> ast.Permute:
        return ast.Permute(tuple(c), self._span(meta))

    def start_anchor(self, meta: Meta, c: list[Any]) -> ast.Anchor:
        return ast.Anchor(True, self._span(meta))

    def end_anchor(self, meta: Meta, c: list[Any]) -> ast.Anchor:
        return ast.Anchor(False, self._span(meta))

    def quantified(self, meta: Meta, c: list[Any]) -> ast.Quantified:
        low, high, greedy = c[1]
        return ast.Quantified(c[0], low, high, greedy, self._span(meta))

    def quantifier(self, meta: Meta, c: list[Any]) -> tuple[int, int | None, bool]:
        low, high = c[0]
        if high is not None and high < low:
            raise self._error(meta, f"quantifier upper bound {high} is below lower bound {low}")
        return low, high, c[1] is None

    def q_star(self, meta: Meta, c: list[Any]) -> tuple[int, int | None]:
        return 0, None

    def q_plus(self, meta: Meta, c: list[Any]) -> tuple[int, int | None]:
        return 1, None

    def q_optional(self, meta: Meta, c: list[Any]) -> tuple[int, int | None]:
        return 0, 1

    def q_exact(self, meta: Meta, c: list[Token]) -> tuple[int, int | None]:
        return int(c[0]), int(c[0])

    def q_range(self, meta: Meta, c: list[Token | None]) -> tuple[int, int | None]:
        return (int(c[0]) if c[0] is not None else 0), (int(c[1]) if c[1] is not None else None)

    # ------------------------------------------------------------ expressions
    def _fold(self, meta: Meta, c: list[Any], op: str) -> ast.Expr:
        result: ast.Expr = c[0]
        for item in c[1:]:
            result = ast.Binary(op, result, item, self._span(meta))
        return result

    def or_(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return self._fold(meta, c, "or")

    def and_(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return self._fold(meta, c, "and")

    def concat(self, meta: Meta, c: list[Any]) -> ast.Expr:
        return self._fold(meta, c, "||")

    def not_(self, meta: Meta, c: list[Any]) -> ast.Unary:
        return ast.Unary("not", c[0], self._span(meta))

    def neg(self, meta: Meta, c: list[Any]) -> ast.Unary:
        return ast.Unary("-", c[0], self._span(meta))

    def arith(self, meta: Meta, c: list[Any]) -> ast.Expr:
        result: ast.Expr = c[0]
        for op, item in zip(c[1::2], c[2::2], strict=True):
            result = ast.Binary(str(op), result, item, self._span(meta))
        return result

    def compare(self, meta: Meta, c: list[Any]) -> ast.Binary:
        op = "<>" if str(c[1]) == "!=" else str(c[1])
        return ast.Binary(op, c[0], c[2], self._span(meta))

    def in_list(self, meta: Meta, c: list[Any]) -> ast.InList:
        return ast.InList(c[0], tuple(c[2:]), c[1] is not None, self._span(meta))

    def like(self, meta: Meta, c: list[Any]) -> ast.Like:
        return ast.Like(c[0], c[2], c[1] is not None, self._span(meta))

    def is_null(self, meta: Meta, c: list[Any]) -> ast.IsNull:
        return ast.IsNull(c[0], c[1] is not None, self._span(meta))

    def between(self, meta: Meta, c: list[Any]) -> ast.Between:
        return ast.Between(c[0], c[2], c[3], c[1] is not None, self._span(meta))

    def cast(self, meta: Meta, c: list[Any]) -> ast.Cast:
        return ast.Cast(c[0], c[1], self._span(meta))

    def type_name(self, meta: Meta, c: list[Any]) -> str:
        return str(c[0]).lower()

    def array(self, meta: Meta, c: list[Any]) -> ast.ArrayCtor:
        return ast.ArrayCtor(tuple(x for x in c if x is not None), self._span(meta))

    def row(self, meta: Meta, c: list[Any]) -> ast.RowCtor:
        return ast.RowCtor(tuple(c), self._span(meta))

    def int_lit(self, meta: Meta, c: list[Token]) -> ast.Literal:
        return ast.Literal(int(c[0]), "int", self._span(meta))

    def decimal_lit(self, meta: Meta, c: list[Token]) -> ast.Literal:
        return ast.Literal(float(c[0]), "decimal", self._span(meta))

    def double_lit(self, meta: Meta, c: list[Token]) -> ast.Literal:
        return ast.Literal(float(c[0]), "double", self._span(meta))

    def string_lit(self, meta: Meta, c: list[Token]) -> ast.Literal:
        return ast.Literal(str(c[0])[1:-1].replace("''", "'"), "string", self._span(meta))

    def true_lit(self, meta: Meta, c: list[Any]) -> ast.Literal:
        return ast.Literal(True, "bool", self._span(meta))

    def false_lit(self, meta: Meta, c: list[Any]) -> ast.Literal:
        return ast.Literal(False, "bool", self._span(meta))

    def null_lit(self, meta: Meta, c: list[Any]) -> ast.Literal:
        return ast.Literal(None, "null", self._span(meta))

    def column(self, meta: Meta, c: list[Token]) -> ast.ColumnRef:
        return ast.ColumnRef(None, _name(c[0]), self._span(meta))

    def qualified_column(self, meta: Meta, c: list[Token]) -> ast.ColumnRef:
        return ast.ColumnRef(_label(c[0]), _name(c[1]), self._span(meta))

    def call(self, meta: Meta, c: list[Any]) -> ast.Call:
        semantics = str(c[0]).upper() if c[0] is not None else None
        name = str(c[1]).lower()
        args = c[2]
        span = self._span(meta)
        if isinstance(args, ast.Call):  # the `*` / `A.*` markers below
            return ast.Call(name, (), semantics, True, args.star_label, span)
        return ast.Call(name, tuple(args or ()), semantics, span=span)

    def args(self, meta: Meta, c: list[Any]) -> list[Any]:
        return c

    def star_arg(self, meta: Meta, c: list[Any]) -> ast.Call:
        return ast.Call("*", (), star=True)

    def label_star_arg(self, meta: Meta, c: list[Token]) -> ast.Call:
        return ast.Call("*", (), star=True, star_label=_label(c[0]))
