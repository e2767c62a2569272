"""Parse DSL text into the AST, reporting every syntax error of a file at once.

The file is cut into top-level items (lines that start, in column 1, with `rule`,
`stream` or `const`); each item is parsed on its own, so one broken rule does not hide
the next. Inside an item, after an error the parser blanks out the failing clause and
tries again, so one run reports one error per broken clause. Blanked text is replaced by
empty lines, so line and column numbers stay true.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any

import lark
from lark import Token, Transformer, v_args
from lark.tree import Meta

from cep import ast
from cep.errors import Diagnostic, RuleSyntaxError, Severity, Span

_TOP_LEVEL = re.compile(r"^[ \t]*(rule|stream|const)\b", re.MULTILINE)
_CLAUSE = re.compile(
    r"^\s*(version|severity|labels|enabled|description|from|pattern|where|within|skip|emit"
    r"|on|key|time|out_of_order|idle|fields)\b"
)
_MAX_RECOVERIES = 20

_FRIENDLY = {
    "NAME": "a name",
    "STRING": "a string",
    "INT": "an integer",
    "FLOAT": "a number",
    "DURATION": "a duration such as 10m",
    "BOOL": "true or false",
    "COMPARE": "a comparison",
    "ADD_OP": "+ or -",
    "MUL_OP": "* / %",
    "$END": "end of input",
}

_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


@cache
def _parser() -> lark.Lark:
    grammar = resources.files("cep").joinpath("grammar.lark").read_text(encoding="utf-8")
    return lark.Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=True)


def parse_duration(text: str) -> ast.Duration:
    number, unit = re.fullmatch(r"([0-9]+)(ms|s|m|h|d)", text).groups()  # type: ignore[union-attr]
    return ast.Duration(int(number) * _UNITS[unit])


def parse_text(text: str, file: str = "<input>", line_offset: int = 0) -> ast.RuleFile:
    """Parse a whole DSL text; raise `RuleSyntaxError` with every syntax error found.

    `line_offset` shifts reported lines, for DSL embedded in a YAML block scalar.
    """
    diagnostics: list[Diagnostic] = []
    result = ast.RuleFile()
    starts = [m.start() for m in _TOP_LEVEL.finditer(text)]
    preamble = text[: starts[0]] if starts else text
    if preamble.strip():
        _report_stray(preamble, file, line_offset, diagnostics)
    declarations_ok = not diagnostics
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(text)
        # Pad with newlines so the chunk's line numbers are the file's.
        padding = "\n" * (text.count("\n", 0, start) + line_offset)
        before = len(diagnostics)
        chunk = _parse_item(padding + text[start:end], file, diagnostics)
        if len(diagnostics) > before:
            # A broken item is left out; checks on the clean items can still run.
            declarations_ok &= _TOP_LEVEL.match(text, start).group(1) == "rule"  # type: ignore[union-attr]
        elif chunk is not None:
            result = result.merged(chunk)
    if diagnostics:
        raise RuleSyntaxError(
            diagnostics, {file: "\n" * line_offset + text}, result, declarations_ok
        )
    return result


def _report_stray(preamble: str, file: str, line_offset: int, out: list[Diagnostic]) -> None:
    for number, line in enumerate(preamble.splitlines(), start=1 + line_offset):
        stripped = line.split("#", 1)[0].strip()
        if stripped:
            column = line.index(stripped) + 1
            span = Span(file, number, column, number, column + len(stripped))
            message = "expected `rule`, `stream` or `const` at the start of a line"
            out.append(Diagnostic("E100", Severity.ERROR, span, message))
            return


def _parse_item(chunk: str, file: str, out: list[Diagnostic]) -> ast.RuleFile | None:
    for _ in range(_MAX_RECOVERIES):
        try:
            tree = _parser().parse(chunk)
        except lark.exceptions.UnexpectedInput as exc:
            out.append(_diagnostic(exc, file))
            recovered = _blank_failing_clause(chunk, exc.line)
            if recovered is None:
                return None
            chunk = recovered
            continue
        try:
            return _ToAst(file).transform(tree)  # type: ignore[no-any-return]
        except lark.exceptions.VisitError as exc:
            if isinstance(exc.orig_exc, _NodeError):
                out.append(exc.orig_exc.diagnostic)
                return None
            raise
    return None


def _blank_failing_clause(chunk: str, error_line: int) -> str | None:
    """Replace the clause holding `error_line` by empty lines; None if nothing to drop."""
    lines = chunk.split("\n")
    index = max(0, min(error_line - 1, len(lines) - 1))
    first_code = next(i for i, line in enumerate(lines) if line.strip())
    start = index
    while start > first_code and not _CLAUSE.match(lines[start]):
        start -= 1
    if start == first_code:
        return None  # the item's own header is broken: give the item up
    end = index + 1
    while end < len(lines) and not _CLAUSE.match(lines[end]):
        end += 1
    return "\n".join(lines[:start] + [""] * (end - start) + lines[end:])


def _diagnostic(exc: lark.exceptions.UnexpectedInput, file: str) -> Diagnostic:
    line, column = max(exc.line, 1), max(exc.column, 1)
    expected: set[str] = set()
    if isinstance(exc, lark.exceptions.UnexpectedToken):
        token = exc.token
        if token.type == "$END":
            message, width = "unexpected end of input", 1
        else:
            message, width = f"unexpected {token.value!r}", len(str(token.value))
        expected = set(exc.expected)
    elif isinstance(exc, lark.exceptions.UnexpectedCharacters):
        message, width = f"unexpected character {exc.char!r}", 1
        expected = set(exc.allowed or ())
    else:
        message, width = "unexpected end of input", 1
        expected = set(getattr(exc, "expected", ()) or ())
    span = Span(file, line, column, line, column + width)
    return Diagnostic("E101", Severity.ERROR, span, message, _friendly(expected))


def _friendly(terminals: set[str]) -> tuple[str, ...]:
    grammar_terms = {t.name: t for t in _parser().terminals}
    names: set[str] = set()
    for name in terminals:
        if name in _FRIENDLY:
            names.add(_FRIENDLY[name])
            continue
        term = grammar_terms.get(name)
        if term is not None and term.pattern.type == "str":
            names.add(repr(term.pattern.value))
        else:
            names.add(name.lower())
    return tuple(sorted(names))


class _NodeError(Exception):
    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def _unquote(token: Token) -> str:
    body = str(token)[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


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
                raise _NodeError(
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
