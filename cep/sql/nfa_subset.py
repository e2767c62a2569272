"""Which SQL rules the NFA engine runs: those whose SQL meaning provably equals FlinkCEP's.

A MATCH_RECOGNIZE rule is compiled to an ordinary `nfa.program.Program` (through the DSL
compiler, `cep.compiler.compile_rule`) when all of these hold; otherwise it stays on the
row-pattern engine, and the first condition that failed is the reason given.

1. ONE ROW PER MATCH (every rule) and AFTER MATCH SKIP PAST LAST ROW or TO NEXT ROW.
2. PATTERN is a concatenation of distinct variables, each with a quantifier (greedy or
   reluctant), optionally ending in `NOT FOLLOWED BY C` (with WITHIN); no alternation,
   grouping, PERMUTE, exclusion, anchors or empty pattern. The last variable has a fixed
   count (`B`, `B{3}`); with `NOT FOLLOWED BY C` and a count above 1, its condition is
   disjoint from C's (FlinkCEP's absence also ends a run at a C row between the last
   stage's iterations, `addStopStateToLooping`; SQL looks for C only after the match).
3. The parse is unique: the condition of every variable X with a variable count (`?`,
   `*`, `+`, `{n,}`, `{n,m}` with n < m) is disjoint (`cep.sql.disjoint`) from that of
   every variable that can take the row right after one of X's rows: the next variable,
   and those behind it while the ones in between are optional.
4. Every DEFINE, MEASURE and SELECT item translates (`cep.sql.to_dsl`).

Why that suffices. SQL matches are contiguous rows, so the DSL pattern is the variables
joined by `next` with `consecutive` loops. Under (3), at every row at most one variable can
take it (a loop going on, or one of the variables it may be left for: their conditions
are pairwise disjoint), so from each start row there is at most one way to map rows to
variables, and since the last variable's count is fixed a mapping that completes cannot go
on: each start row has at most one match. Then SQL's preferred match from a row is that
match, whatever the quantifiers prefer, and FlinkCEP finds the same one from that row
(its other branches die at the next row). SKIP PAST LAST ROW makes SQL take, left to right,
the match of the earliest start, then resume after its last row; the NFA engine holds a
completed match until no partial match started earlier (`nfa.reference`,
`emit_by_skip_strategy`), emits the earliest first and drops the partial matches that
started at or before its last event: the same matches. SKIP TO NEXT ROW makes SQL try
every start row, as the NFA's skip to next does (it drops only partial matches of the
match's own start row, of which there is no other). WITHIN is `within` (rows earlier than
first row time + window) and `NOT FOLLOWED BY C` the DSL's absence at the end (no C after
the match inside the window; emitted at the window end): both have the same definition.
"""

from __future__ import annotations

from dataclasses import dataclass

from cep import ast as dsl
from cep.compiler import DEFAULT_ALERT_TOPIC, EngineChoice, compile_rule
from cep.errors import Diagnostic, Severity, Span
from cep.sql import ast
from cep.sql.disjoint import approximate, disjoint
from cep.sql.rules import SqlRule
from cep.sql.to_dsl import Scope, Untranslatable, translate
from nfa import expr as ir
from nfa.program import Program, Schema

NFA_ENGINE = "nfa"
ROW_PATTERN_ENGINE = "row-pattern"
_UNIQUE = (
    "its pattern is a concatenation whose parse is unique (disjoint conditions where a "
    "variable count may end), so its one match per start row is also FlinkCEP's"
)
_SKIPS = {
    ast.SkipKind.PAST_LAST_ROW: dsl.SkipKind.PAST_LAST,
    ast.SkipKind.TO_NEXT_ROW: dsl.SkipKind.TO_NEXT,
}


class _Refused(Exception):
    def __init__(self, span: Span, reason: str):
        super().__init__(reason)
        self.span = span
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Variable:
    name: str
    low: int
    high: int | None
    span: Span

    @property
    def variable_count(self) -> bool:
        return self.high is None or self.low < self.high


def nfa_program(rule: SqlRule, stream: int, schema: Schema) -> tuple[Program | None, EngineChoice]:
    """The rule as an NFA program when it is in the subset, and the engine choice."""
    mr = rule.query.match_recognize
    try:
        program = _compile(rule, mr, stream, schema)
    except _Refused as refused:
        return None, EngineChoice(rule.name, ROW_PATTERN_ENGINE, refused.reason, refused.span)
    return program, EngineChoice(rule.name, NFA_ENGINE, _UNIQUE, rule.span)


def _compile(rule: SqlRule, mr: ast.MatchRecognize, stream: int, schema: Schema) -> Program:
    if mr.skip.kind not in _SKIPS:
        where = f" {mr.skip.label}" if mr.skip.label else ""
        raise _Refused(mr.skip.span, f"AFTER MATCH SKIP {mr.skip.kind.value}{where}")
    variables = _variables(mr.pattern)
    last = variables[-1]
    if last.high != last.low:
        raise _Refused(last.span, f"the last variable {last.name} has no fixed count")
    fields = schema.streams[stream].fields
    columns: dict[str, int] = {}
    for index, (name, _) in enumerate(fields):
        columns.setdefault(name.lower(), index)
    defines = {d.label: d.condition for d in mr.definitions}
    _check_unique_parse(variables, defines, columns)
    if mr.absent is not None and last.low > 1:
        shapes = [approximate(defines.get(n), n, columns) for n in (last.name, mr.absent)]
        if not disjoint(*shapes):
            raise _Refused(
                last.span,
                f"a row may satisfy both {last.name} (counted {last.low} times) and the absent "
                f"{mr.absent}: FlinkCEP's absence also stops at such a row between the "
                f"{last.name} rows, SQL's only after them",
            )
    return _program(rule, mr, variables, defines, stream, schema)


def _variables(pattern: ast.Pattern) -> list[_Variable]:
    items = pattern.items if isinstance(pattern, ast.Concat) else (pattern,)
    out: list[_Variable] = []
    for item in items:
        low: int = 1
        high: int | None = 1
        body: ast.Pattern = item
        if isinstance(item, ast.Quantified):
            low, high, body = item.low, item.high, item.body
        if not isinstance(body, ast.Label):
            what = {
                ast.Alternation: "alternation (|)",
                ast.Permute: "PERMUTE",
                ast.Exclusion: "exclusion {- -}",
                ast.Anchor: "an anchor (^ or $)",
                ast.Empty: "an empty pattern ()",
            }.get(type(body), "a quantified group")
            raise _Refused(body.span, f"the pattern has {what}")
        if high == 0:
            raise _Refused(item.span, f"{body.name} is quantified to no rows")
        if any(v.name == body.name for v in out):
            raise _Refused(item.span, f"the variable {body.name} appears twice in the pattern")
        out.append(_Variable(body.name, low, high, item.span))
    return out


def _check_unique_parse(
    variables: list[_Variable], defines: dict[str, ast.Expr], columns: dict[str, int]
) -> None:
    """Refuse unless every variable that can take the row after a variable-count
    variable's row has a condition disjoint from it."""
    shapes = [approximate(defines.get(v.name), v.name, columns) for v in variables]
    for i, v in enumerate(variables):
        if not v.variable_count:
            continue
        for j in range(i + 1, len(variables)):
            if not disjoint(shapes[i], shapes[j]):
                follower = variables[j].name
                raise _Refused(
                    v.span,
                    f"a row may satisfy both {v.name} (a variable count) and {follower}, "
                    "which can follow it, so the parse is not provably unique",
                )
            if variables[j].low > 0:
                break


def _program(
    rule: SqlRule,
    mr: ast.MatchRecognize,
    variables: list[_Variable],
    defines: dict[str, ast.Expr],
    stream: int,
    schema: Schema,
) -> Program:
    stream_schema = schema.streams[stream]
    fields: dict[str, str] = {}
    for name, _ in stream_schema.fields:
        fields.setdefault(name.lower(), name)
    names = [(v.name, v.high) for v in variables]
    if mr.absent is not None:
        names.append((mr.absent, 1))
    first = variables[0].name if variables[0].low > 0 else None
    base = Scope(tuple(names), fields, stream_schema.time_field, variables[-1].name, first)
    steps = [_step(v, i) for i, v in enumerate(variables)]
    if mr.absent is not None:
        steps.append(dsl.Step(dsl.Stage(mr.absent), dsl.Contiguity.RELAXED, negated=True))
    conditions = []
    for name, _ in names:
        if name in defines:
            scope = Scope(base.variables, fields, base.time_field, base.last, first, name)
            conditions.append(dsl.Condition(name, _translate(defines[name], scope)))
    emit = dsl.Output(
        rule.emit_to or DEFAULT_ALERT_TOPIC, _outputs(rule.query, base, stream_schema.key)
    )
    within = dsl.Duration(mr.within_ms) if mr.within_ms is not None else None
    dsl_rule = dsl.Rule(
        name=rule.name,
        title=rule.title,
        description=rule.description,
        version=rule.version,
        severity=rule.severity,
        labels=rule.labels,
        enabled=rule.enabled,
        streams=(stream_schema.name,),
        pattern=dsl.Pattern(tuple(steps)),
        conditions=tuple(conditions),
        within=within,
        skip=dsl.Skip(_SKIPS[mr.skip.kind]),
        emit=emit,
        span=rule.span,
    )
    problems: list[Diagnostic] = []
    program = compile_rule(dsl_rule, schema, {}, problems)
    failed = [d for d in problems if d.severity is Severity.ERROR]
    if program is None or failed:
        span = failed[0].span if failed else rule.span
        message = failed[0].message if failed else "the DSL compiler refused it"
        raise _Refused(span, f"the DSL cannot express it ({message})")
    _check_ordering(program, rule.span)
    return program


def _step(v: _Variable, index: int) -> dsl.Step:
    """`next v` with a `consecutive` loop; the first step keeps the parser's default
    contiguity, as `v{3,} consecutive next ...` parses, so the automata are identical."""
    repeats = v.high is None or v.high > 1
    inner = dsl.LoopContiguity.CONSECUTIVE if repeats else dsl.LoopContiguity.RELAXED
    stage = dsl.Stage(v.name, quantifier=dsl.Quantifier(v.low, v.high), inner=inner, span=v.span)
    contiguity = dsl.Contiguity.STRICT if index else dsl.Contiguity.RELAXED
    return dsl.Step(stage, contiguity, span=v.span)


def _translate(e: ast.Expr, scope: Scope) -> dsl.Expr:
    try:
        return translate(e, scope)
    except Untranslatable as refused:
        where = f"DEFINE {scope.current}" if scope.current else "MEASURES"
        if scope.plain is not None:
            where = "the SELECT list"
        raise _Refused(refused.span, f"{where} uses {refused.message}") from None


def _outputs(query: ast.Query, scope: Scope, key: str) -> tuple[dsl.OutputField, ...]:
    """The alert fields: the MEASURES, or the SELECT items over the key and measures."""
    measures = [(m.name, _translate(m.expr, scope)) for m in query.match_recognize.measures]
    if query.select is None:
        return tuple(dsl.OutputField(name, expr) for name, expr in measures)
    plain: dict[str, dsl.Expr] = {key.lower(): dsl.Qualified(scope.last, key)}
    for name, expr in measures:
        plain.setdefault(name, expr)  # the first of equal names wins, as in the SQL layer
    select = Scope(scope.variables, scope.fields, scope.time_field, scope.last, plain=plain)
    out = []
    for index, item in enumerate(query.select):
        default = item.expr.name if isinstance(item.expr, ast.ColumnRef) else f"_col{index}"
        out.append(dsl.OutputField(item.alias or default, _translate(item.expr, select)))
    return tuple(out)


def _check_ordering(program: Program, span: Span) -> None:
    """Refuse what the DSL types but computes on string ids: ordering, min and max."""
    exprs = list(program.atoms)
    if program.emit is not None:
        exprs += [e for _, e in program.emit.fields]
    for expr in exprs:
        for node in ir.walk(expr):
            if (
                isinstance(node, ir.Op)
                and node.op in ("<", "<=", ">", ">=")
                and any(a.type is ir.Type.STRING for a in node.args)
            ):
                raise _Refused(span, "strings are compared by order")
            if (
                isinstance(node, ir.StageAgg)
                and node.kind in (ir.AggKind.MIN, ir.AggKind.MAX)
                and node.type is ir.Type.STRING
            ):
                raise _Refused(span, "min() or max() of strings")
