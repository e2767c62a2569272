"""Build the AST from Lark's parse tree: one method per grammar rule, spans on every node."""

from __future__ import annotations

import re
from typing import Any

from lark import Token, Transformer, v_args
from lark.tree import Meta

from cep import ast
from cep.errors import Diagnostic, Severity, Span

_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_duration(text: str) -> ast.Duration:
    """`10m` -> Duration(600000)."""
    number, unit = re.fullmatch(r"([0-9]+)(ms|s|m|h|d)", text).groups()  # type: ignore[union-attr]
    return ast.Duration(int(number) * _UNITS[unit])


class NodeError(Exception):
    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def _unquote(token: Token) -> str:
    body = str(token)[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


@v_args(meta=True)
class ToAst(Transformer[Token, Any]):
    """Builds AST nodes from the parse tree; each node gets the span of its text."""

    def __init__(self, file: str):
        super().__init__()
        self.file = file

    def _span(self, meta: Meta) -> Span:
        if getattr(meta, "empty", True):
            return Span.unknown(self.file)
        return Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column)

    def _token_span(self, token: Token) -> Span:
        return Span(
            self.file,
            token.line or 1,
            token.column or 1,
            token.end_line or token.line or 1,
            token.end_column or token.column or 1,
        )

    # -------------------------------------------------------------- top level
    def start(self, meta: Meta, items: list[Any]) -> ast.RuleFile:
        return ast.RuleFile(
            streams=tuple(i for i in items if isinstance(i, ast.StreamDecl)),
            consts=tuple(i for i in items if isinstance(i, ast.ConstDecl)),
            rules=tuple(i for i in items if isinstance(i, ast.Rule)),
        )

    def stream_decl(self, meta: Meta, items: list[Any]) -> ast.StreamDecl:
        name, *clauses = items
        values: dict[str, Any] = {}
        for key, value in clauses:
            values[key] = value
        return ast.StreamDecl(name=str(name), span=self._span(meta), **values)

    def stream_key(self, meta: Meta, items: list[Token]) -> tuple[str, Any]:
        return ("key", str(items[0]))

    def stream_time(self, meta: Meta, items: list[Any]) -> tuple[str, Any]:
        source: str = items[0]
        if source in ("kafka", "processing"):
            return ("time_source", ast.TimeSource(source))
        return ("time_field", source)

    def time_source(self, meta: Meta, items: list[Token]) -> str:
        return str(items[0])

    def stream_out_of_order(self, meta: Meta, items: list[Token]) -> tuple[str, Any]:
        return ("out_of_order", parse_duration(str(items[0])))

    def stream_idle(self, meta: Meta, items: list[Token]) -> tuple[str, Any]:
        return ("idle", parse_duration(str(items[0])))

    def stream_fields(self, meta: Meta, items: list[ast.FieldDecl]) -> tuple[str, Any]:
        return ("fields", tuple(items))

    def field_decl(self, meta: Meta, items: list[Token]) -> ast.FieldDecl:
        return ast.FieldDecl(str(items[0]), str(items[1]), self._span(meta))

    def const_decl(self, meta: Meta, items: list[Any]) -> ast.ConstDecl:
        return ast.ConstDecl(str(items[0]), items[1], self._span(meta))

    def map_literal(self, meta: Meta, items: list[tuple[Any, Any]]) -> ast.MapLiteral:
        return ast.MapLiteral(tuple(items), self._span(meta))

    def map_entry(self, meta: Meta, items: list[Any]) -> tuple[Any, Any]:
        return (items[0], items[1])

    # -------------------------------------------------------------- rules
    def rule(self, meta: Meta, items: list[Any]) -> ast.Rule:
        name, title, *clauses = items
        values: dict[str, Any] = {}
        conditions: list[ast.Condition] = []
        for key, value, span in clauses:
            if key == "conditions":
                conditions.extend(value)
            elif key in values:
                raise NodeError(
                    Diagnostic("E102", Severity.ERROR, span, f"the `{key}` clause is given twice")
                )
            else:
                values[key] = value
        return ast.Rule(
            name=str(name),
            title=_unquote(title) if title is not None else "",
            conditions=tuple(conditions),
            span=self._span(meta),
            **values,
        )

    def rule_version(self, meta: Meta, items: list[Token]) -> tuple[str, Any, Span]:
        return ("version", int(items[0]), self._span(meta))

    def rule_severity(self, meta: Meta, items: list[Token]) -> tuple[str, Any, Span]:
        return ("severity", str(items[0]), self._span(meta))

    def rule_labels(self, meta: Meta, items: list[Token | None]) -> tuple[str, Any, Span]:
        labels = tuple(
            _unquote(t) if t.type == "STRING" else str(t) for t in items if t is not None
        )
        return ("labels", labels, self._span(meta))

    def rule_enabled(self, meta: Meta, items: list[Token]) -> tuple[str, Any, Span]:
        return ("enabled", str(items[0]) == "true", self._span(meta))

    def rule_description(self, meta: Meta, items: list[Token]) -> tuple[str, Any, Span]:
        return ("description", _unquote(items[0]), self._span(meta))

    def rule_from(self, meta: Meta, items: list[Token]) -> tuple[str, Any, Span]:
        return ("streams", tuple(str(t) for t in items), self._span(meta))

    def rule_pattern(self, meta: Meta, items: list[ast.Pattern]) -> tuple[str, Any, Span]:
        return ("pattern", items[0], self._span(meta))

    def rule_where(self, meta: Meta, items: list[ast.Condition]) -> tuple[str, Any, Span]:
        return ("conditions", tuple(items), self._span(meta))

    def rule_within(self, meta: Meta, items: list[Token]) -> tuple[str, Any, Span]:
        return ("within", parse_duration(str(items[0])), self._span(meta))

    def rule_skip(self, meta: Meta, items: list[ast.Skip]) -> tuple[str, Any, Span]:
        return ("skip", items[0], self._span(meta))

    def rule_emit(self, meta: Meta, items: list[Any]) -> tuple[str, Any, Span]:
        return (
            "emit",
            ast.Output(_unquote(items[0]), items[1], self._span(meta)),
            self._span(meta),
        )

    def rule_timeout(self, meta: Meta, items: list[Any]) -> tuple[str, Any, Span]:
        output = ast.Output(_unquote(items[0]), items[1], self._span(meta))
        return ("on_timeout", output, self._span(meta))

    def condition(self, meta: Meta, items: list[Any]) -> ast.Condition:
        return ast.Condition(str(items[0]), items[1], self._span(meta))

    def skip_none(self, meta: Meta, items: list[Token]) -> ast.Skip:
        return ast.Skip(ast.SkipKind.NONE, None, self._span(meta))

    def skip_to_next(self, meta: Meta, items: list[Token]) -> ast.Skip:
        return ast.Skip(ast.SkipKind.TO_NEXT, None, self._span(meta))

    def skip_past_last(self, meta: Meta, items: list[Token]) -> ast.Skip:
        return ast.Skip(ast.SkipKind.PAST_LAST, None, self._span(meta))

    def skip_to_first(self, meta: Meta, items: list[Token]) -> ast.Skip:
        return ast.Skip(ast.SkipKind.TO_FIRST, str(items[0]), self._span(meta))

    def skip_to_last(self, meta: Meta, items: list[Token]) -> ast.Skip:
        return ast.Skip(ast.SkipKind.TO_LAST, str(items[0]), self._span(meta))

    def output_fields(self, meta: Meta, items: list[Any]) -> tuple[ast.OutputField, ...]:
        return tuple(i for i in items if i is not None)

    def output_field(self, meta: Meta, items: list[Any]) -> ast.OutputField:
        return ast.OutputField(str(items[0]), items[1], self._span(meta))

    # -------------------------------------------------------------- patterns
    def pattern(self, meta: Meta, items: list[Any]) -> ast.Pattern:
        steps = [ast.Step(items[0], span=items[0].span)]
        for i in range(1, len(items), 2):
            contiguity, negated = items[i]
            element = items[i + 1]
            steps.append(ast.Step(element, contiguity, negated, element.span))
        return ast.Pattern(tuple(steps), self._span(meta))

    def connect_strict(self, meta: Meta, items: list[Token | None]) -> tuple[Any, bool]:
        return (ast.Contiguity.STRICT, items[0] is not None)

    def connect_relaxed(self, meta: Meta, items: list[Token | None]) -> tuple[Any, bool]:
        return (ast.Contiguity.RELAXED, items[0] is not None)

    def connect_any(self, meta: Meta, items: list[Token]) -> tuple[Any, bool]:
        return (ast.Contiguity.ANY, False)

    def _modifiers(self, mods: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in mods:
            out[key] = value
        return out

    def stage(self, meta: Meta, items: list[Any]) -> ast.Stage:
        name, stream, *rest = items
        quantifier = ast.ONCE
        if rest and isinstance(rest[0], ast.Quantifier):
            quantifier = rest.pop(0)
        return ast.Stage(
            name=str(name),
            stream=str(stream) if stream is not None else None,
            quantifier=quantifier,
            span=self._span(meta),
            **self._modifiers(rest),
        )

    def group(self, meta: Meta, items: list[Any]) -> ast.Group:
        alternatives = [i for i in items if isinstance(i, ast.Pattern)]
        rest = [i for i in items if not isinstance(i, ast.Pattern)]
        quantifier = ast.ONCE
        if rest and isinstance(rest[0], ast.Quantifier):
            quantifier = rest.pop(0)
        return ast.Group(
            alternatives=tuple(alternatives),
            quantifier=quantifier,
            span=self._span(meta),
            **self._modifiers(rest),
        )

    def q_optional(self, meta: Meta, items: list[Token]) -> ast.Quantifier:
        return ast.Quantifier(0, 1, self._span(meta))

    def q_star(self, meta: Meta, items: list[Token]) -> ast.Quantifier:
        return ast.Quantifier(0, None, self._span(meta))

    def q_plus(self, meta: Meta, items: list[Token]) -> ast.Quantifier:
        return ast.Quantifier(1, None, self._span(meta))

    def q_exactly(self, meta: Meta, items: list[Token]) -> ast.Quantifier:
        return ast.Quantifier(int(items[0]), int(items[0]), self._span(meta))

    def q_at_least(self, meta: Meta, items: list[Token]) -> ast.Quantifier:
        return ast.Quantifier(int(items[0]), None, self._span(meta))

    def q_between(self, meta: Meta, items: list[Token]) -> ast.Quantifier:
        return ast.Quantifier(int(items[0]), int(items[1]), self._span(meta))

    def m_consecutive(self, meta: Meta, items: list[Token]) -> tuple[str, Any]:
        return ("inner", ast.LoopContiguity.CONSECUTIVE)

    def m_combinations(self, meta: Meta, items: list[Token]) -> tuple[str, Any]:
        return ("inner", ast.LoopContiguity.COMBINATIONS)

    def m_greedy(self, meta: Meta, items: list[Token]) -> tuple[str, Any]:
        return ("greedy", True)

    def m_until(self, meta: Meta, items: list[Any]) -> tuple[str, Any]:
        return ("until", items[0])

    # -------------------------------------------------------------- expressions
    def _fold(self, meta: Meta, items: list[Any]) -> Any:
        result = items[0]
        for i in range(1, len(items), 2):
            result = ast.Binary(str(items[i]), result, items[i + 1], self._span(meta))
        return result

    or_expr = _fold
    and_expr = _fold
    sum = _fold
    product = _fold

    def logical_not(self, meta: Meta, items: list[Any]) -> ast.Unary:
        return ast.Unary("not", items[1], self._span(meta))

    def compare(self, meta: Meta, items: list[Any]) -> ast.Binary:
        return ast.Binary(str(items[1]), items[0], items[2], self._span(meta))

    def member(self, meta: Meta, items: list[Any]) -> ast.Member:
        operand, negation, target = items
        return ast.Member(operand, target, negation is not None, self._span(meta))

    def const_ref(self, meta: Meta, items: list[Token]) -> ast.Name:
        return ast.Name(str(items[0]), self._span(meta))

    def between(self, meta: Meta, items: list[Any]) -> ast.Between:
        operand, negation, low, _and, high = items
        return ast.Between(operand, low, high, negation is not None, self._span(meta))

    def is_null(self, meta: Meta, items: list[Any]) -> ast.IsNull:
        return ast.IsNull(items[0], items[1] is not None, self._span(meta))

    def negate(self, meta: Meta, items: list[Any]) -> ast.Unary:
        return ast.Unary("-", items[0], self._span(meta))

    def call(self, meta: Meta, items: list[Any]) -> ast.Call:
        name, *args = items
        return ast.Call(str(name), tuple(a for a in args if a is not None), self._span(meta))

    def qualified(self, meta: Meta, items: list[Token]) -> ast.Qualified:
        return ast.Qualified(str(items[0]), str(items[1]), self._span(meta))

    def lookup(self, meta: Meta, items: list[Any]) -> ast.Lookup:
        return ast.Lookup(str(items[0]), items[1], self._span(meta))

    def name(self, meta: Meta, items: list[Token]) -> ast.Name:
        return ast.Name(str(items[0]), self._span(meta))

    def list_literal(self, meta: Meta, items: list[Any]) -> ast.ListLiteral:
        return ast.ListLiteral(tuple(i for i in items if i is not None), self._span(meta))

    def int_lit(self, meta: Meta, items: list[Token]) -> ast.Literal:
        return ast.Literal(int(items[0]), self._span(meta))

    def neg_int_lit(self, meta: Meta, items: list[Token]) -> ast.Literal:
        return ast.Literal(-int(items[0]), self._span(meta))

    def float_lit(self, meta: Meta, items: list[Token]) -> ast.Literal:
        return ast.Literal(float(items[0]), self._span(meta))

    def neg_float_lit(self, meta: Meta, items: list[Token]) -> ast.Literal:
        return ast.Literal(-float(items[0]), self._span(meta))

    def string_lit(self, meta: Meta, items: list[Token]) -> ast.Literal:
        return ast.Literal(_unquote(items[0]), self._span(meta))

    def bool_lit(self, meta: Meta, items: list[Token]) -> ast.Literal:
        return ast.Literal(str(items[0]) == "true", self._span(meta))

    def duration_lit(self, meta: Meta, items: list[Token]) -> ast.Literal:
        return ast.Literal(parse_duration(str(items[0])), self._span(meta))

    def null_lit(self, meta: Meta, items: list[Token]) -> ast.Literal:
        return ast.Literal(None, self._span(meta))
