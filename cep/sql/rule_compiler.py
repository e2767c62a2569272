"""Compile parsed SQL rules (`cep.sql.rules.SqlRule`) against the declared streams.

A rule's query reads one declared stream (`FROM txns`); its columns are the stream's fields
(names folded to lower case, as SQL does with unquoted names). The streaming engine matches
per key and in event-time order, so PARTITION BY must be the stream's key field and ORDER
BY (optional) its time field, ascending; a rule emits one alert per match, so it uses ONE
ROW PER MATCH. Every problem is reported with the span of the offending text (E23x).

A rule in the NFA subset (`cep.sql.nfa_subset`: its SQL meaning provably equals FlinkCEP's)
becomes an ordinary `nfa.program.Program`, run like a DSL rule; the others become
`SqlProgram`s for the row-pattern engine. Each rule gets a note (I240 / I241) saying which
engine runs it and why.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cep.compiler import EngineChoice
from cep.errors import CepError, Diagnostic, error, note, warning
from cep.sql import ast
from cep.sql.compiler import CompiledMatchRecognize, ExprCompiler, compile_match_recognize
from cep.sql.nfa_subset import NFA_ENGINE, nfa_program
from cep.sql.rules import SqlRule
from nfa.program import OutputSpec, Program, RuleInfo, Schema, StreamSchema
from nfa.rowpattern_expr import RExpr, RType
from nfa.rowpattern_rule import FIELD_TYPES, SqlProgram

DEFAULT_ALERT_TOPIC = "cep.alerts"  # as `cep.compiler.DEFAULT_ALERT_TOPIC`
_SQL_TYPES = {
    RType.BOOLEAN: "boolean",
    RType.BIGINT: "bigint",
    RType.DOUBLE: "double",
    RType.VARCHAR: "varchar",
}


@dataclass
class SqlRules:
    """The compiled SQL rules: NFA `programs` (the subset), `sql_programs` (the rest), the
    engine choice of each and its note, and the problems found."""

    programs: list[Program] = field(default_factory=list)
    sql_programs: list[SqlProgram] = field(default_factory=list)
    engines: list[EngineChoice] = field(default_factory=list)
    notes: list[Diagnostic] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def compile_sql_rules(
    rules: Sequence[SqlRule], schema: Schema, taken: Iterable[str] = (), nfa: bool = True
) -> SqlRules:
    """Compile every rule; collect every problem.

    `taken` are the names of the DSL rules: a rule name is unique across both kinds.
    `nfa` False keeps every rule on the row-pattern engine (tests of that engine).
    """
    names = set(taken)
    result = SqlRules()
    out = result.diagnostics
    for rule in rules:
        if rule.name in names:
            out.append(error("E235", rule.span, f"rule `{rule.name}` is declared twice"))
            continue
        names.add(rule.name)
        if rule.version < 1:
            out.append(error("E230", rule.span, "a rule's version starts at 1"))
        program = _compile(rule, schema, out)
        if program is None:
            continue
        loop = _unbounded(rule.query.match_recognize.pattern)
        if loop is not None and rule.query.match_recognize.within_ms is None:
            result.notes.append(  # a warning: with the notes, not the errors
                warning(
                    "W242",
                    loop.span,
                    f"rule `{rule.name}`: this quantifier has no upper bound and the pattern no "
                    "WITHIN: on a stream its partial matches wait until a row ends them, and "
                    "a key that stops sending keeps them",
                )
            )
        nfa_rule, choice = nfa_program(rule, program.stream, schema) if nfa else (None, None)
        if nfa_rule is not None and choice is not None:
            result.programs.append(nfa_rule)
        else:
            result.sql_programs.append(program)
        if choice is not None:
            result.engines.append(choice)
            result.notes.append(_note(choice, program))
    return result


def _unbounded(pattern: ast.Pattern) -> ast.Quantified | None:
    """The first quantifier of `pattern` without an upper bound (`*`, `+`, `{n,}`)."""
    if isinstance(pattern, ast.Quantified) and pattern.high is None:
        return pattern
    found = (_unbounded(child) for child in ast.sub_patterns(pattern))
    return next((q for q in found if q is not None), None)


def _nullable(pattern: ast.Pattern) -> bool:
    """Whether `pattern` can match no row at all (an empty match)."""
    if isinstance(pattern, ast.Label):
        return False
    if isinstance(pattern, ast.Concat | ast.Permute):
        return all(_nullable(item) for item in pattern.items)
    if isinstance(pattern, ast.Alternation):
        return any(_nullable(item) for item in pattern.items)
    if isinstance(pattern, ast.Exclusion):
        return _nullable(pattern.body)
    if isinstance(pattern, ast.Quantified):
        return pattern.low == 0 or _nullable(pattern.body)
    return True  # () and the anchors take no row


def _note(choice: EngineChoice, program: SqlProgram) -> Diagnostic:
    if choice.engine == NFA_ENGINE:
        message = f"SQL rule `{choice.rule}` runs on the NFA engine, as DSL rules do: "
        return note("I240", choice.span, message + choice.reason)
    from nfa.rowpattern_jit import kernel_refusal  # numba: only for rules that need it

    refusal = kernel_refusal(program)
    where = "its Numba kernels" if refusal is None else f"in Python: no kernel for {refusal}"
    message = f"SQL rule `{choice.rule}` runs on the row-pattern engine ({where}): "
    return note("I241", choice.span, message + choice.reason)


def _compile(rule: SqlRule, schema: Schema, out: list[Diagnostic]) -> SqlProgram | None:
    query, mr = rule.query, rule.query.match_recognize
    relation = query.relation
    if not isinstance(relation, ast.TableName):
        out.append(error("E231", mr.span, "a SQL rule reads a declared stream: FROM stream"))
        return None
    found = [i for i, s in enumerate(schema.streams) if s.name.lower() == relation.name.lower()]
    if not found:
        known = ", ".join(s.name for s in schema.streams) or "none declared"
        out.append(error("E231", relation.span, f"unknown stream `{relation.name}` ({known})"))
        return None
    stream_index = found[0]
    stream = schema.streams[stream_index]
    columns = [name.lower() for name, _ in stream.fields]
    types = [_SQL_TYPES.get(FIELD_TYPES[t], "bigint") for _, t in stream.fields]
    try:
        compiled = compile_match_recognize(mr, columns, types, streaming=True)
    except CepError as exc:
        out.extend(exc.diagnostics)
        return None
    key_column = columns.index(stream.key.lower())
    before = len(out)
    _check_clauses(mr, compiled, stream, columns, key_column, out)
    row_fields = [c for i, c in enumerate(columns) if i != key_column]
    all_rows = mr.rows_per_match is not ast.RowsPerMatch.ONE
    names = [*compiled.measure_names, *(row_fields if all_rows else [])]
    select = _select(query.select, columns[key_column], names, out)
    if len(out) > before:
        return None
    info = RuleInfo(
        rule.name,
        rule.version,
        rule.severity,
        rule.labels,
        rule.description or rule.title,
        rule.enabled,
    )
    return SqlProgram(
        info=info,
        schema=schema,
        stream=stream_index,
        key_column=key_column,
        query=compiled.query,
        measure_names=compiled.measure_names,
        within_ms=compiled.within_ms,
        absent=compiled.absent,
        select=select,
        emit=OutputSpec(rule.emit_to or DEFAULT_ALERT_TOPIC, ()),
    )


def _check_clauses(
    mr: ast.MatchRecognize,
    compiled: CompiledMatchRecognize,
    stream: StreamSchema,
    columns: list[str],
    key_column: int,
    out: list[Diagnostic],
) -> None:
    if compiled.partition != (key_column,):
        where = mr.partition_by[0] if mr.partition_by else None
        span = getattr(where, "span", mr.span)
        out.append(
            error(
                "E232",
                span,
                f"PARTITION BY must be the key of `{stream.name}`: PARTITION BY {stream.key}",
            )
        )
    time_column = columns.index(stream.time_field.lower()) if stream.time_field else None
    if compiled.order and compiled.order != ((time_column, False),):
        span = getattr(mr.order_by[0].expr, "span", mr.span)
        wanted = (
            f"ORDER BY {stream.time_field} (or none)"
            if stream.time_field
            else "no ORDER BY (the stream has no time field)"
        )
        out.append(error("E233", span, f"rows come in event-time order: {wanted}"))
    if mr.rows_per_match is ast.RowsPerMatch.ALL_WITH_UNMATCHED:
        out.append(
            error(
                "E234",
                mr.span,
                "a rule alerts on matches: WITH UNMATCHED ROWS is for bounded queries; use "
                "ONE ROW PER MATCH or ALL ROWS PER MATCH OMIT EMPTY MATCHES",
            )
        )
    elif mr.rows_per_match is ast.RowsPerMatch.ALL_SHOW_EMPTY and _nullable(mr.pattern):
        out.append(
            error(
                "E234",
                mr.span,
                "this pattern can match no row, and an empty match has no event to alert on: "
                "use ALL ROWS PER MATCH OMIT EMPTY MATCHES",
            )
        )


def _select(
    items: tuple[ast.SelectItem, ...] | None,
    key: str,
    names: list[str],
    out: list[Diagnostic],
) -> tuple[tuple[str, RExpr], ...] | None:
    """The SELECT list over (key, *names): the measures, and with ALL ROWS PER MATCH the
    row's other fields; None for `SELECT *` (those, as they are)."""
    if items is None:
        return None
    layout = [(key, RType.UNKNOWN), *((m, RType.UNKNOWN) for m in names)]
    exprs = ExprCompiler(layout, plain=True)
    fields: list[tuple[str, RExpr]] = []
    for index, item in enumerate(items):
        known = len(exprs.diagnostics)
        try:
            compiled = exprs.compile(item.expr)
        except Exception:
            if len(exprs.diagnostics) == known:
                raise
            continue  # the compiler recorded a diagnostic
        default = item.expr.name if isinstance(item.expr, ast.ColumnRef) else f"_col{index}"
        fields.append((item.alias or default, compiled))
    out.extend(exprs.diagnostics)
    return tuple(fields)
