"""Compile checked rule files into NFA programs.

`compile_rules` runs the semantic passes, lowers every condition and output to typed
expressions (collecting their diagnostics too), builds each rule's automaton and returns
programs that share one `Schema`: every stream the files declare, so two rules reading one
stream see the same columns and the same watermark.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from cep import ast
from cep.automaton import AutomatonBuilder
from cep.checks import run_checks, stages_of
from cep.errors import Diagnostic, RuleCheckError, Severity, Span
from cep.flatten import flatten
from cep.lower import Lowerer, Scope
from cep.plans import Consuming, GroupPlan, Plan, StagePlan, atom
from nfa import expr as ir
from nfa.program import OutputSpec, Program, RuleInfo, Schema, SkipKind, StreamSchema
from nfa.rowpattern_rule import SqlProgram

_TYPES = {t.value: t for t in ir.Type}
_SKIPS = {
    ast.SkipKind.NONE: SkipKind.NO_SKIP,
    ast.SkipKind.TO_NEXT: SkipKind.TO_NEXT,
    ast.SkipKind.PAST_LAST: SkipKind.PAST_LAST,
    ast.SkipKind.TO_FIRST: SkipKind.TO_FIRST,
    ast.SkipKind.TO_LAST: SkipKind.TO_LAST,
}
DEFAULT_ALERT_TOPIC = "cep.alerts"


@dataclass(frozen=True, slots=True)
class EngineChoice:
    """Which engine runs a SQL rule and why (`cep.sql.nfa_subset`): `engine` is "nfa" (an
    ordinary program, as DSL rules) or "row-pattern"; `span` points at the reason."""

    rule: str
    engine: str
    reason: str
    span: Span


@dataclass(frozen=True)
class CompiledRules:
    """NFA programs of DSL rules, and (filled by `cep.loader`) the SQL rules' programs:
    those in the NFA subset among `programs`, after the DSL ones; the rest in
    `sql_programs`. `engines` says, per SQL rule, which engine runs it and why."""

    schema: Schema
    programs: tuple[Program, ...]
    warnings: tuple[Diagnostic, ...]
    sql_programs: tuple[SqlProgram, ...] = ()
    engines: tuple[EngineChoice, ...] = ()

    @property
    def rules(self) -> tuple[Program | SqlProgram, ...]:
        """Every rule in engine order (`nfa.mixed`): the NFA programs, then the SQL ones."""
        return (*self.programs, *self.sql_programs)

    def program(self, name: str) -> Program:
        for program in self.programs:
            if program.info.name == name:
                return program
        raise KeyError(name)

    def engine(self, name: str) -> EngineChoice | None:
        """The engine choice of SQL rule `name`; None for a DSL rule (or no such rule)."""
        return next((c for c in self.engines if c.rule == name), None)


def build_schema(streams: tuple[ast.StreamDecl, ...]) -> Schema:
    out = []
    for s in streams:
        time_field = s.time_field if s.time_source is ast.TimeSource.FIELD else None
        out.append(
            StreamSchema(
                name=s.name,
                key=s.key or "",
                time_field=time_field,
                out_of_order_ms=s.out_of_order.millis,
                idle_ms=s.idle.millis if s.idle else None,
                fields=tuple((f.name, _TYPES.get(f.type, ir.Type.STRING)) for f in s.fields),
                processing_time=s.time_source is ast.TimeSource.PROCESSING,
            )
        )
    return Schema(tuple(out))


def compile_rules(rule_file: ast.RuleFile, sources: dict[str, str] | None = None) -> CompiledRules:
    """Check and compile; raise `RuleCheckError` carrying every error (and warning) found."""
    diagnostics = run_checks(rule_file)
    if any(d.severity is Severity.ERROR for d in diagnostics):
        raise RuleCheckError(diagnostics, sources)
    schema = build_schema(rule_file.streams)
    consts = {c.name: c for c in rule_file.consts}
    programs = []
    for rule in rule_file.rules:
        program = compile_rule(rule, schema, consts, diagnostics)
        if program is not None:
            programs.append(program)
    if any(d.severity is Severity.ERROR for d in diagnostics):
        raise RuleCheckError(diagnostics, sources)
    return CompiledRules(schema, tuple(programs), tuple(diagnostics))


def compile_rule(
    rule: ast.Rule, schema: Schema, consts: dict[str, ast.ConstDecl], out: list[Diagnostic]
) -> Program | None:
    """One checked rule's program; lowering problems go to `out`. The SQL front end
    (`cep.sql.nfa_subset`) compiles the rules it translates here too."""
    assert rule.pattern is not None  # checked
    stages = [stage for _, stage in stages_of(rule.pattern)]
    stage_index = {s.name: i for i, s in enumerate(stages)}
    stage_streams = {s.name: schema.stream_index(s.stream or rule.streams[0]) for s in stages}
    conditions = {c.stage: c for c in rule.conditions}
    tables: list[tuple[tuple[ir.ConstValue, ir.ConstValue], ...]] = []
    table_index: dict[str, int] = {}
    multi_stream = len(rule.streams) > 1

    def scope(current: int | None, visible: set[str]) -> Scope:
        return Scope(
            schema,
            consts,
            stage_streams,
            stage_index,
            current,
            frozenset(visible),
            tables,
            table_index,
            out,
        )

    atoms: list[ir.Expr] = []
    for i, stage in enumerate(stages):
        # A condition may read the stages before it, and its own stage when it loops.
        visible = {s.name for s in stages[:i]}
        if stage.quantifier.max is None or stage.quantifier.max > 1:
            visible.add(stage.name)
        condition: ir.Expr = ir.Const(ir.Type.BOOL, True)
        if stage.name in conditions:
            lowerer = Lowerer(scope(stage_streams[stage.name], visible))
            condition = lowerer.condition(conditions[stage.name].expr)
        if multi_stream:
            is_stream = ir.Op("stream_is", (), ir.Type.BOOL, (stage_streams[stage.name],))
            condition = ir.Op("and", (is_stream, condition), ir.Type.BOOL)
        atoms.append(condition)

    untils: dict[str, tuple[object, ...]] = {}
    for i, stage in enumerate(stages):
        if stage.until is not None:
            visible = {s.name for s in stages[: i + 1]}
            lowered = Lowerer(scope(stage_streams[stage.name], visible)).condition(stage.until)
            atoms.append(lowered)
            untils[stage.name] = atom(len(atoms) - 1)
    plans = _plans(rule.pattern, stage_index, untils)
    builder = AutomatonBuilder(plans, windowed=rule.within is not None)
    arrays = flatten(builder.build())

    emit = _output(rule.emit, scope(None, set(stage_index)), rule)
    on_timeout = (
        _output(rule.on_timeout, scope(None, set(stage_index)), rule) if rule.on_timeout else None
    )
    aggregates = tuple(
        sorted(
            {
                (node.stage, node.kind.value, node.column)
                for expr in [*atoms, *(e for _, e in emit.fields)]
                for node in ir.walk(expr)
                if isinstance(node, ir.StageAgg)
            }
        )
    )
    from nfa.program import Aggregate

    info = RuleInfo(
        rule.name,
        rule.version,
        rule.severity,
        rule.labels,
        rule.description or rule.title,
        rule.enabled,
    )
    skip_stage = stage_index.get(rule.skip.stage or "", -1)
    return Program(
        info=info,
        schema=schema,
        stage_names=tuple(s.name for s in stages),
        stage_streams=tuple(stage_streams[s.name] for s in stages),
        atoms=tuple(atoms),
        aggregates=tuple(Aggregate(s, ir.AggKind(k), c) for s, k, c in aggregates),
        window_ms=rule.within.millis if rule.within else 0,
        skip=_SKIPS[rule.skip.kind],
        skip_stage=skip_stage,
        emit=emit,
        on_timeout=on_timeout,
        tables=tuple(tables),
        **arrays,  # type: ignore[arg-type]
    )


def _plans(
    pattern: ast.Pattern, stage_index: dict[str, int], untils: dict[str, tuple[object, ...]]
) -> list[Plan]:
    """The builder's view of a pattern: one plan per element, groups recursively."""
    out: list[Plan] = []
    for step in pattern.steps:
        element = step.element
        consuming, inner, quantity = _quantity(step, element)
        if isinstance(element, ast.Stage):
            index = stage_index[element.name]
            out.append(
                StagePlan(
                    element.name,
                    index,
                    atom(index),
                    consuming,
                    inner,
                    greedy=element.greedy,
                    until=untils.get(element.name),
                    **quantity,
                )
            )
        else:
            alternatives = tuple(
                tuple(_plans(alt, stage_index, untils)) for alt in element.alternatives
            )
            name = "(" + "|".join(p.name for alt in alternatives for p in alt[:1]) + ")"
            out.append(GroupPlan(name, alternatives, consuming, inner, **quantity))
    return out


def _quantity(step: ast.Step, element: ast.Element) -> tuple[Consuming, Consuming, dict[str, Any]]:
    if step.negated:
        consuming = (
            Consuming.NOT_NEXT if step.contiguity is ast.Contiguity.STRICT else Consuming.NOT_FOLLOW
        )
    else:
        consuming = {
            ast.Contiguity.STRICT: Consuming.STRICT,
            ast.Contiguity.RELAXED: Consuming.NEXT,
            ast.Contiguity.ANY: Consuming.ANY,
        }[step.contiguity]
    inner = {
        ast.LoopContiguity.RELAXED: Consuming.NEXT,
        ast.LoopContiguity.CONSECUTIVE: Consuming.STRICT,
        ast.LoopContiguity.COMBINATIONS: Consuming.ANY,
    }[element.inner]
    q = element.quantifier
    times_from = max(1, q.min)
    quantity: dict[str, Any] = {
        "times_from": times_from,
        "times_to": q.max if q.max is not None else times_from,
        "looping": q.max is None,
        "optional": q.min == 0,
    }
    return consuming, inner, quantity


def _output(output: ast.Output | None, scope: Scope, rule: ast.Rule) -> OutputSpec:
    if output is None:
        return OutputSpec(DEFAULT_ALERT_TOPIC, ())
    lowerer = Lowerer(scope)
    fields = tuple((f.name, lowerer.lower(f.expr)) for f in output.fields)
    return OutputSpec(output.topic, fields)


def with_window(program: Program, window_ms: int) -> Program:
    """A copy of `program` with another window (benchmarks vary it)."""
    return replace(program, window_ms=window_ms)
