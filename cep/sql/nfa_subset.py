"""Which SQL rules the NFA engine runs: those whose SQL meaning provably equals FlinkCEP's.

A MATCH_RECOGNIZE rule is compiled to an ordinary `nfa.program.Program` (through the DSL
compiler, `cep.compiler.compile_rule`) when all of these hold; otherwise it stays on the
row-pattern engine, and the first condition that failed is the reason given.

1. ONE ROW PER MATCH and AFTER MATCH SKIP PAST LAST ROW or TO NEXT ROW.
2. PATTERN is a concatenation (parentheses around a sub-concatenation are dropped) of
   elements, optionally ending in `NOT FOLLOWED BY C` (with WITHIN): a variable with a
   quantifier (greedy or reluctant), or an unquantified alternation `(B | C | ...)` of single
   variables; each variable appears once; no quantified group or alternation, PERMUTE,
   exclusion, anchors or empty pattern. The last element takes a fixed number of rows: a
   fixed count (`B`, `B{3}`), an alternation, or a reluctant `B{n,}?`/`B{n,m}?` with
   n >= 1, which ends the match at its n-th row and so is `B{n}`. With `NOT FOLLOWED BY C`
   and a count above 1, its condition is disjoint from C's (FlinkCEP's absence also ends a
   run at a C row between the last stage's iterations, `addStopStateToLooping`; SQL looks
   for C only after the match).
3. The parse is unique but at gaps (5): the variables of an alternation have pairwise
   disjoint conditions (`cep.sql.disjoint`), and so has every element X with a variable
   count (`?`, `*`, `+`, `{n,}`, `{n,m}` with n < m) that is not a gap with every element
   that can take the row right after one of X's rows: the next element, and those behind
   it while the ones in between are optional (a lead (6) and its gap excepted).
4. Every DEFINE, MEASURE and SELECT item translates (`cep.sql.to_dsl`); when the last
   element is an alternation, MEASURES do not read "the last row" (`x`, `LAST(x)`,
   `CLASSIFIER()`): which variable holds it varies, and the DSL has no coalesce.
5. Gaps. A reluctant `X*?` or `X{0,m}?` (m > 1) of one variable, after another element,
   whose condition is not disjoint from that of the next element T (its target), which
   takes exactly one row (count 1, or an alternation), is a gap: it runs as the DSL's
   `X* consecutive until (T's condition) next T`. T is the last element, or after T come
   only gaps and their targets, where every later gap is unbounded and accepts every row
   (no DEFINE, or TRUE), and no later target's DEFINE reads rows of the first gap or of
   anything after it.
6. Leads. A greedy unbounded loop `P+`, `P*`, `P{n,}` of one variable right before the
   first gap X, whose condition is not disjoint from X's, is the gap's lead: it runs as
   the DSL's `P{n,} consecutive greedy`. The DEFINEs of X and of its target read no rows
   of P or X (`count(X.*)`, `P.y`, ...), those of later targets none of P; P is disjoint
   from the target (3).

Why that suffices. SQL matches are contiguous rows, so the DSL pattern is the elements
joined by `next`, loops `consecutive`, an alternation a DSL group `(B | C)`. We show that
from each start row the NFA has at most one run that can complete, and that its match is
SQL's preferred match from that row (or neither has one).

Without gaps: under (3), at every row at most one variable can take it (a loop going on,
or one of the elements it may be left for: their conditions are pairwise disjoint, and
an alternation is the union of its variables), so from each start row there is at most
one way to map rows to variables, and since the last element takes a fixed number of
rows a mapping that completes cannot go on: each start row has at most one match. Then
SQL's preferred match from a row is that match, whatever the quantifiers and the order
of alternatives prefer, and FlinkCEP finds the same one (its other branches die at the
next row).

A gap X with target T, T last: SQL's reluctant X first tries to leave the loop, so at each
row after X's predecessor it tries T first; T takes the first row it holds on (ending the
match), X takes the rows before it, and a row that satisfies neither ends the attempt.
`X* consecutive until (T)` `next T` does exactly that: `until` takes the rows T holds on
away from X (the take condition becomes X and not T, FlinkCEP's extendWithUntilCondition)
and the loop may be left for T at any row, where T's strict TAKE needs T; a T condition
that is null (false in SQL) neither stops the loop nor lets T take the row. The until
condition is T's DEFINE read on X's stage: the current row and the rows of variables
before T, the same rows when T's own condition is read on the same row. T is not last:
the rest R after T is a chain of unbounded gaps accepting every row and targets that read
no rows from the first gap on, so whether R can match after a row r does not depend on
the rows mapped before r (beyond those before the first gap, fixed by the start row), and
a match of R after r' > r is one after r too (the gap after T takes the rows in between);
WITHIN bounds both by the same first row time. So when R fails after the first T row, it
fails after every later T row SQL would try by backtracking into X, and the preferred
match gives every target its first row: again the NFA's only run (at a row of a gap
exactly one of X and T can go on, elsewhere (3) holds). `NOT FOLLOWED BY` does not make
SQL backtrack: it is decided on the preferred match, which is dropped when a C row comes
(`nfa.rowpattern_key`).

A lead P before the gap X with target T: SQL's greedy P first takes every row it can (the
longest run of rows P holds on, as P reads only earlier rows of the match) and tries
fewer only when the rest fails. A shorter P leaves its last rows to X, which must then
accept them too, and T's first row after them is the same row (T is disjoint from P); X
and T read no rows of P or X, so on the rows they share their conditions have the same
values, and what follows T depends only on T's row (later targets read no rows of P
either). So the rest cannot succeed after a shorter P where it failed after the longest,
and the preferred match takes the longest run: FlinkCEP's greedy loop, which the run cannot leave at a row P holds on (the edges
after it carry "and not P", updateWithGreedyCondition), so at every row again only one
of P, X and T can go on.

Skips, windows and absence. SKIP PAST LAST ROW makes SQL take, left to right, the match
of the earliest start, then resume after its last row; the NFA engine holds a completed
match until no partial match started earlier (`nfa.reference`, `emit_by_skip_strategy`),
emits the earliest first and drops the partial matches that started at or before its
last event: the same matches. SKIP TO NEXT ROW makes SQL try every start row, as the
NFA's skip to next does (it drops only partial matches of the match's own start row, of
which there is no other). WITHIN is `within` (rows earlier than first row time + window)
and `NOT FOLLOWED BY C` the DSL's absence at the end (no C after the match inside the
window; emitted at the window end): both have the same definition.
"""

from __future__ import annotations

from cep import ast as dsl
from cep.compiler import DEFAULT_ALERT_TOPIC, EngineChoice, compile_rule
from cep.errors import Diagnostic, Severity
from cep.sql import ast
from cep.sql.rules import SqlRule
from cep.sql.subset_shape import Element, Refused, shape
from cep.sql.to_dsl import Scope, Untranslatable, translate
from nfa.program import Program, Schema

NFA_ENGINE = "nfa"
ROW_PATTERN_ENGINE = "row-pattern"
_SKIPS = {
    ast.SkipKind.PAST_LAST_ROW: dsl.SkipKind.PAST_LAST,
    ast.SkipKind.TO_NEXT_ROW: dsl.SkipKind.TO_NEXT,
}


def nfa_program(rule: SqlRule, stream: int, schema: Schema) -> tuple[Program | None, EngineChoice]:
    """The rule as an NFA program when it is in the subset, and the engine choice."""
    mr = rule.query.match_recognize
    try:
        program, elements = _compile(rule, mr, stream, schema)
    except Refused as refused:
        return None, EngineChoice(rule.name, ROW_PATTERN_ENGINE, refused.reason, refused.span)
    return program, EngineChoice(rule.name, NFA_ENGINE, _reason(elements), rule.span)


def _reason(elements: tuple[Element, ...]) -> str:
    """Why the rule is in the subset, for `cep check`'s note (I240)."""
    alternation = " (with alternations of disjoint variables)"
    gaps = [f"{e.label}{_quantifier(e)}" for e in elements if e.gap]
    reason = "its pattern is a concatenation"
    reason += alternation if any(e.alternation for e in elements) else ""
    reason += " whose parse is unique (disjoint conditions where a variable count may end)"
    if gaps:
        reason += (
            f" but for the reluctant {', '.join(gaps)}, which SQL ends at the first row of the "
            f"element after {'it' if len(gaps) == 1 else 'each'}, as the DSL's `until` does"
        )
    leads = [e.label for e in elements if e.lead]
    if leads:
        reason += f", and the greedy {leads[0]} before it, as the DSL's `greedy` does"
    return reason + ", so its one match per start row is also FlinkCEP's"


def _quantifier(e: Element) -> str:
    return "*?" if e.high is None else f"{{0,{e.high}}}?"


def _compile(
    rule: SqlRule, mr: ast.MatchRecognize, stream: int, schema: Schema
) -> tuple[Program, tuple[Element, ...]]:
    if mr.rows_per_match is not ast.RowsPerMatch.ONE:
        raise Refused(mr.span, "ALL ROWS PER MATCH gives an alert per match row")
    if mr.skip.kind not in _SKIPS:
        where = f" {mr.skip.label}" if mr.skip.label else ""
        raise Refused(mr.skip.span, f"AFTER MATCH SKIP {mr.skip.kind.value}{where}")
    columns: dict[str, int] = {}
    for index, (name, _) in enumerate(schema.streams[stream].fields):
        columns.setdefault(name.lower(), index)
    defines = {d.label: d.condition for d in mr.definitions}
    elements = shape(mr, defines, columns)
    return _program(rule, mr, elements, defines, stream, schema), elements


def _program(
    rule: SqlRule,
    mr: ast.MatchRecognize,
    elements: tuple[Element, ...],
    defines: dict[str, ast.Expr],
    stream: int,
    schema: Schema,
) -> Program:
    stream_schema = schema.streams[stream]
    fields: dict[str, str] = {}
    for name, _ in stream_schema.fields:
        fields.setdefault(name.lower(), name)
    names: list[tuple[str, int | None]] = []
    slots: list[int] = []  # the element of each variable: alternatives cannot read each other
    for index, e in enumerate(elements):
        names += [(name, e.high) for name in e.names]
        slots += [index] * len(e.names)
    if mr.absent is not None:
        names.append((mr.absent, 1))
        slots.append(len(elements))
    first, last = elements[0], elements[-1]
    base = Scope(
        tuple(names),
        fields,
        stream_schema.time_field,
        None if last.alternation else last.names[0],
        first.names[0] if first.low > 0 and not first.alternation else None,
        slots=tuple(slots),
    )

    def condition(name: str) -> dsl.Expr:
        """The DEFINE of `name` as a DSL expression (TRUE when undefined)."""
        if name not in defines:
            return dsl.Literal(True)
        return _translate(defines[name], base.defining(name))

    steps = []
    for index, e in enumerate(elements):
        until = None
        if e.gap:
            until = _any([condition(name) for name in elements[index + 1].names])
        steps.append(_step(e, index, until))
    if mr.absent is not None:
        steps.append(dsl.Step(dsl.Stage(mr.absent), dsl.Contiguity.RELAXED, negated=True))
    conditions = [dsl.Condition(name, condition(name)) for name, _ in names if name in defines]
    key = next((e.names[0] for e in reversed(elements) if e.low > 0 and not e.alternation), None)
    emit = dsl.Output(
        rule.emit_to or DEFAULT_ALERT_TOPIC, _outputs(rule.query, base, stream_schema.key, key)
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
        raise Refused(span, f"the DSL cannot express it ({message})")
    # strings are not ordered in the DSL (ids at run time): `<` or max() of a string is
    # refused by the DSL compiler above, and the rule stays on the row-pattern engine
    return program


def _step(e: Element, index: int, until: dsl.Expr | None) -> dsl.Step:
    """`next e` with a `consecutive` loop (`until` the target's condition for a gap,
    `greedy` for a lead), an alternation as a group; the first step keeps the parser's default contiguity, as
    `v{3,} consecutive next ...` parses, so the automata are identical."""
    contiguity = dsl.Contiguity.STRICT if index else dsl.Contiguity.RELAXED
    if e.alternation:
        alternatives = tuple(dsl.Pattern((dsl.Step(dsl.Stage(n, span=e.span)),)) for n in e.names)
        return dsl.Step(dsl.Group(alternatives, span=e.span), contiguity, span=e.span)
    repeats = e.high is None or e.high > 1
    inner = dsl.LoopContiguity.CONSECUTIVE if repeats else dsl.LoopContiguity.RELAXED
    quantifier = dsl.Quantifier(e.low, e.high)
    stage = dsl.Stage(
        e.names[0], quantifier=quantifier, inner=inner, greedy=e.lead, until=until, span=e.span
    )
    return dsl.Step(stage, contiguity, span=e.span)


def _any(conditions: list[dsl.Expr]) -> dsl.Expr:
    """The disjunction (three-valued in both languages) of the conditions."""
    out = conditions[0]
    for c in conditions[1:]:
        out = dsl.Binary("or", out, c, c.span)
    return out


def _translate(e: ast.Expr, scope: Scope) -> dsl.Expr:
    try:
        return translate(e, scope)
    except Untranslatable as refused:
        where = f"DEFINE {scope.current}" if scope.current else "MEASURES"
        if scope.plain is not None:
            where = "the SELECT list"
        raise Refused(refused.span, f"{where} uses {refused.message}") from None


def _outputs(
    query: ast.Query, scope: Scope, key: str, stage: str | None
) -> tuple[dsl.OutputField, ...]:
    """The alert fields: the MEASURES, or the SELECT items over the key (read on `stage`,
    a variable every match has a row of) and the measures."""
    measures = [(m.name, _translate(m.expr, scope)) for m in query.match_recognize.measures]
    if query.select is None:
        return tuple(dsl.OutputField(name, expr) for name, expr in measures)
    plain: dict[str, dsl.Expr] = {}
    if stage is not None:
        plain[key.lower()] = dsl.Qualified(stage, key)
    for name, expr in measures:
        plain.setdefault(name, expr)  # the first of equal names wins, as in the SQL layer
    select = scope.selecting(plain)
    out = []
    for index, item in enumerate(query.select):
        default = item.expr.name if isinstance(item.expr, ast.ColumnRef) else f"_col{index}"
        out.append(dsl.OutputField(item.alias or default, _translate(item.expr, select)))
    return tuple(out)
