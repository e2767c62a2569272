"""Syntax diagnostics of the SQL front end, in the form of `cep.errors`.

A Lark error becomes one `Diagnostic`: file, line, column, a caret-wide span over the
offending token and the expected tokens, named as written in the grammar.
"""

from __future__ import annotations

import lark

from cep.errors import Diagnostic, Severity, Span


def syntax_diagnostic(
    exc: lark.exceptions.UnexpectedInput, file: str, parser: lark.Lark
) -> Diagnostic:
    """E201: where the text stops following the grammar, and what was expected there."""
    line, column = max(exc.line, 1), max(exc.column, 1)
    expected: set[str] = set()
    if isinstance(exc, lark.exceptions.UnexpectedToken):
        if exc.token.type == "$END":
            message, width = "unexpected end of input", 1
        else:
            message, width = f"unexpected {exc.token.value!r}", len(str(exc.token.value))
        expected = set(exc.expected)
    elif isinstance(exc, lark.exceptions.UnexpectedCharacters):
        message, width = f"unexpected character {exc.char!r}", 1
        expected = set(exc.allowed or ())
    else:
        message, width = "unexpected end of input", 1
    span = Span(file, line, column, line, column + width)
    return Diagnostic("E201", Severity.ERROR, span, message, _friendly(expected, parser))


def _friendly(terminals: set[str], parser: lark.Lark) -> tuple[str, ...]:
    by_name = {t.name: t for t in parser.terminals}
    names: set[str] = set()
    for name in terminals:
        term = by_name.get(name)
        if term is not None and term.pattern.type == "str":
            names.add(repr(term.pattern.value))
        elif name == "$END":
            names.add("end of input")
        else:
            names.add(name.lower())
    return tuple(sorted(names))
