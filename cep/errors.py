"""Diagnostics and the error classes of the language.

Every phase (parse, check, compile) collects *all* the problems it finds as structured
`Diagnostic` values and raises them together, once, as the phase's subclass of `CepError`,
so a rule author sees every mistake of a file in one run.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class Severity(enum.Enum):
    """How bad a diagnostic is (not to be confused with a rule's alert severity)."""

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"  # information, such as which engine runs a SQL rule


@dataclass(frozen=True, slots=True)
class Span:
    """A region of a source file; lines and columns count from 1."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    @staticmethod
    def unknown(file: str = "<input>") -> Span:
        return Span(file, 1, 1, 1, 1)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem in a rule file: a stable code, a severity, where, and what."""

    code: str
    severity: Severity
    span: Span
    message: str
    expected: tuple[str, ...] = ()

    def render(self, source: str | None = None) -> str:
        """`file:line:col: severity[code]: message`, then the line and a caret under the span."""
        s = self.span
        head = f"{s.file}:{s.line}:{s.column}: {self.severity.value}[{self.code}]: {self.message}"
        if self.expected:
            head += "\n  expected one of: " + ", ".join(self.expected)
        if source is None:
            return head
        lines = source.splitlines()
        if not 1 <= s.line <= len(lines):
            return head
        text = lines[s.line - 1].expandtabs(1)
        width = (s.end_column - s.column) if s.end_line == s.line else len(text) - s.column + 1
        caret = " " * (s.column - 1) + "^" * max(1, width)
        gutter = f"{s.line:>4} | "
        return f"{head}\n{gutter}{text}\n{' ' * (len(gutter) - 2)}| {caret}"


class CepError(Exception):
    """Root of the language's errors: carries every diagnostic of the failing phase."""

    phase = "language"

    def __init__(self, diagnostics: Iterable[Diagnostic], sources: dict[str, str] | None = None):
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        self.sources = dict(sources or {})
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(d.render(self.sources.get(d.span.file)) for d in self.diagnostics)

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.ERROR)


class RuleSyntaxError(CepError):
    """The text does not follow the grammar.

    `partial` holds the items that parsed cleanly, so semantic checks can still run on them
    (one run reports every mistake); `declarations_ok` is False when a stream or constant
    declaration was broken, which would make checks on the rest report false errors.
    """

    phase = "parse"

    def __init__(
        self,
        diagnostics: Iterable[Diagnostic],
        sources: dict[str, str] | None = None,
        partial: object = None,
        declarations_ok: bool = False,
    ):
        super().__init__(diagnostics, sources)
        self.partial = partial
        self.declarations_ok = declarations_ok


class RuleCheckError(CepError):
    """The text parses but means something invalid (unknown names, types, windows)."""

    phase = "check"


class RuleCompileError(CepError):
    """A checked rule could not be turned into an NFA program."""

    phase = "compile"


def error(code: str, span: Span, message: str) -> Diagnostic:
    return Diagnostic(code, Severity.ERROR, span, message)


def warning(code: str, span: Span, message: str) -> Diagnostic:
    return Diagnostic(code, Severity.WARNING, span, message)


def note(code: str, span: Span, message: str) -> Diagnostic:
    return Diagnostic(code, Severity.NOTE, span, message)
