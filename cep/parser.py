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

import lark

from cep import ast
from cep.errors import Diagnostic, RuleSyntaxError, Severity, Span
from cep.transform import NodeError, ToAst, parse_duration

__all__ = ["parse_duration", "parse_text"]

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


@cache
def _parser() -> lark.Lark:
    grammar = resources.files("cep").joinpath("grammar.lark").read_text(encoding="utf-8")
    return lark.Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=True)


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
            return ToAst(file).transform(tree)  # type: ignore[no-any-return]
        except lark.exceptions.VisitError as exc:
            if isinstance(exc.orig_exc, NodeError):
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
