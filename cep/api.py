"""A Python API for the same rules: a pattern builder in the spirit of FlinkCEP's Pattern API.

Conditions are expression objects (`col("amount") < 5`), never Python callables: they
build the same AST as the DSL and go through the same checks and compiler.

    txns = Stream("txns", key="card_id", time="ts",
                  fields={"card_id": "string", "amount": "float", "ts": "timestamp"})
    pattern = (Pattern.begin("small").where(col("amount") < 5).times_or_more(3).consecutive()
               .next("big").where(col("amount") > 500)
               .within("10m").skip_past_last())
    rule = Rule("card_testing", txns, pattern, emit_to="alerts",
                emit={"tests": count("small"), "amount": col("big.amount")})
    engine = RuleEngine([rule])
    alerts = engine.process([("txns", {"card_id": "c1", "amount": 1.0, "ts": 0}), ...])
    alerts += engine.finish()
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from cep import ast
from cep.compiler import compile_rules
from cep.parser import parse_duration
from nfa.batch import StringPool, batch_from_records
from nfa.reference import EngineConfig, ReferenceEngine
from nfa.results import EngineOutput


def _node(value: Any) -> ast.Expr:
    if isinstance(value, Expr):
        return value.node
    if isinstance(value, (list, tuple)):
        return ast.ListLiteral(tuple(ast.Literal(v) for v in value))
    return ast.Literal(value)


class Expr:
    """An expression over the current event and the partial match; operators build the AST."""

    def __init__(self, node: ast.Expr):
        self.node = node

    def _bin(self, op: str, other: Any, swap: bool = False) -> Expr:
        left, right = (_node(other), self.node) if swap else (self.node, _node(other))
        return Expr(ast.Binary(op, left, right))

    def __lt__(self, other: Any) -> Expr:
        return self._bin("<", other)

    def __le__(self, other: Any) -> Expr:
        return self._bin("<=", other)

    def __gt__(self, other: Any) -> Expr:
        return self._bin(">", other)

    def __ge__(self, other: Any) -> Expr:
        return self._bin(">=", other)

    def __eq__(self, other: Any) -> Expr:  # type: ignore[override]
        return self._bin("==", other)

    def __ne__(self, other: Any) -> Expr:  # type: ignore[override]
        return self._bin("!=", other)

    def __add__(self, other: Any) -> Expr:
        return self._bin("+", other)

    def __radd__(self, other: Any) -> Expr:
        return self._bin("+", other, swap=True)

    def __sub__(self, other: Any) -> Expr:
        return self._bin("-", other)

    def __rsub__(self, other: Any) -> Expr:
        return self._bin("-", other, swap=True)

    def __mul__(self, other: Any) -> Expr:
        return self._bin("*", other)

    def __rmul__(self, other: Any) -> Expr:
        return self._bin("*", other, swap=True)

    def __truediv__(self, other: Any) -> Expr:
        return self._bin("/", other)

    def __mod__(self, other: Any) -> Expr:
        return self._bin("%", other)

    def __neg__(self) -> Expr:
        return Expr(ast.Unary("-", self.node))

    def __and__(self, other: Any) -> Expr:
        return self._bin("and", other)

    def __or__(self, other: Any) -> Expr:
        return self._bin("or", other)

    def __invert__(self) -> Expr:
        return Expr(ast.Unary("not", self.node))

    def __bool__(self) -> bool:
        raise TypeError("use & | ~ to combine conditions, not and/or/not")

    __hash__ = None  # type: ignore[assignment]

    def isin(self, values: Sequence[Any]) -> Expr:
        return Expr(ast.Member(self.node, ast.ListLiteral(tuple(ast.Literal(v) for v in values))))

    def between(self, low: Any, high: Any) -> Expr:
        return Expr(ast.Between(self.node, _node(low), _node(high)))

    def is_null(self) -> Expr:
        return Expr(ast.IsNull(self.node))

    def is_not_null(self) -> Expr:
        return Expr(ast.IsNull(self.node, negated=True))


def col(name: str) -> Expr:
    """A field of the current event (`amount`) or of a stage's last event (`big.amount`)."""
    if "." in name:
        qualifier, field_name = name.split(".", 1)
        return Expr(ast.Qualified(qualifier, field_name))
    return Expr(ast.Name(name))


def lit(value: Any) -> Expr:
    return Expr(ast.Literal(value))


def func(name: str, *args: Any) -> Expr:
    """A function of the language: lower, length, startswith, abs, min, max, distance_km..."""
    return Expr(ast.Call(name, tuple(_node(a) for a in args)))


def count(stage: str) -> Expr:
    return Expr(ast.Call("count", (ast.Name(stage),)))


def agg(kind: str, stage_field: str) -> Expr:
    """An aggregate over a stage: agg("sum", "small.amount")."""
    return func(kind, col(stage_field))


@dataclass(frozen=True)
class Stream:
    name: str
    key: str
    time: str | None  # field name; None with time_source "kafka" or "processing"
    fields: Mapping[str, str]
    out_of_order: str = "0s"
    time_source: str = "field"

    def declaration(self) -> ast.StreamDecl:
        return ast.StreamDecl(
            name=self.name,
            key=self.key,
            time_source=ast.TimeSource(self.time_source),
            time_field=self.time,
            out_of_order=parse_duration(self.out_of_order),
            fields=tuple(ast.FieldDecl(k, v) for k, v in self.fields.items()),
        )


@dataclass(frozen=True)
class Pattern:
    """An immutable builder; every method returns a new Pattern."""

    steps: tuple[ast.Step, ...] = ()
    conditions: tuple[ast.Condition, ...] = ()
    window: ast.Duration | None = None
    skip: ast.Skip = field(default_factory=ast.Skip)

    @staticmethod
    def begin(name: str, stream: str | None = None) -> Pattern:
        return Pattern((ast.Step(ast.Stage(name, stream)),))

    def _then(
        self, name: str, stream: str | None, contiguity: ast.Contiguity, negated: bool = False
    ) -> Pattern:
        return replace(
            self, steps=(*self.steps, ast.Step(ast.Stage(name, stream), contiguity, negated))
        )

    def next(self, name: str, stream: str | None = None) -> Pattern:
        return self._then(name, stream, ast.Contiguity.STRICT)

    def followed_by(self, name: str, stream: str | None = None) -> Pattern:
        return self._then(name, stream, ast.Contiguity.RELAXED)

    def followed_by_any(self, name: str, stream: str | None = None) -> Pattern:
        return self._then(name, stream, ast.Contiguity.ANY)

    def not_next(self, name: str, stream: str | None = None) -> Pattern:
        return self._then(name, stream, ast.Contiguity.STRICT, negated=True)

    def not_followed_by(self, name: str, stream: str | None = None) -> Pattern:
        return self._then(name, stream, ast.Contiguity.RELAXED, negated=True)

    def _last(self, **changes: Any) -> Pattern:
        step = self.steps[-1]
        stage = replace(step.element, **changes)
        return replace(self, steps=(*self.steps[:-1], replace(step, element=stage)))

    def where(self, condition: Expr) -> Pattern:
        name = self.steps[-1].element
        assert isinstance(name, ast.Stage)
        return replace(
            self, conditions=(*self.conditions, ast.Condition(name.name, condition.node))
        )

    def optional(self) -> Pattern:
        q = self.steps[-1].element.quantifier
        return self._last(quantifier=ast.Quantifier(0, q.max))

    def one_or_more(self) -> Pattern:
        return self._last(quantifier=ast.Quantifier(1, None))

    def times(self, low: int, high: int | None = -1) -> Pattern:
        return self._last(quantifier=ast.Quantifier(low, low if high == -1 else high))

    def times_or_more(self, low: int) -> Pattern:
        return self._last(quantifier=ast.Quantifier(low, None))

    def consecutive(self) -> Pattern:
        return self._last(inner=ast.LoopContiguity.CONSECUTIVE)

    def allow_combinations(self) -> Pattern:
        return self._last(inner=ast.LoopContiguity.COMBINATIONS)

    def greedy(self) -> Pattern:
        return self._last(greedy=True)

    def until(self, condition: Expr) -> Pattern:
        return self._last(until=condition.node)

    def within(self, duration: str) -> Pattern:
        return replace(self, window=parse_duration(duration))

    def skip_to_next(self) -> Pattern:
        return replace(self, skip=ast.Skip(ast.SkipKind.TO_NEXT))

    def skip_past_last(self) -> Pattern:
        return replace(self, skip=ast.Skip(ast.SkipKind.PAST_LAST))

    def skip_to_first(self, stage: str) -> Pattern:
        return replace(self, skip=ast.Skip(ast.SkipKind.TO_FIRST, stage))

    def skip_to_last(self, stage: str) -> Pattern:
        return replace(self, skip=ast.Skip(ast.SkipKind.TO_LAST, stage))


@dataclass(frozen=True)
class Rule:
    name: str
    streams: Stream | Sequence[Stream]
    pattern: Pattern
    emit_to: str = "cep.alerts"
    emit: Mapping[str, Expr] = field(default_factory=dict)
    severity: str = "medium"
    version: int = 1

    def to_ast(self) -> ast.Rule:
        streams = [self.streams] if isinstance(self.streams, Stream) else list(self.streams)
        fields = tuple(ast.OutputField(k, v.node) for k, v in self.emit.items())
        return ast.Rule(
            name=self.name,
            version=self.version,
            severity=self.severity,
            streams=tuple(s.name for s in streams),
            pattern=ast.Pattern(self.pattern.steps),
            conditions=self.pattern.conditions,
            within=self.pattern.window,
            skip=self.pattern.skip,
            emit=ast.Output(self.emit_to, fields),
        )


class RuleEngine:
    """Compile rules and match batches of events in the application, without the daemon."""

    def __init__(self, rules: Sequence[Rule], config: EngineConfig | None = None):
        streams: dict[str, Stream] = {}
        for rule in rules:
            for stream in [rule.streams] if isinstance(rule.streams, Stream) else rule.streams:
                streams[stream.name] = stream
        rule_file = ast.RuleFile(
            streams=tuple(s.declaration() for s in streams.values()),
            rules=tuple(r.to_ast() for r in rules),
        )
        self.compiled = compile_rules(rule_file)
        self.pool = StringPool()
        self.keys = StringPool()
        self.engine = ReferenceEngine(self.compiled.programs, self.pool, config)
        self._seq = 0

    def process(self, records: Iterable[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
        """Feed (stream name, event) pairs; return the alerts they completed."""
        rows = list(records)
        batch = batch_from_records(self.compiled.schema, rows, self.pool, self.keys, self._seq)
        self._seq += len(rows)
        return self._alerts(self.engine.process(batch))

    def finish(self) -> list[dict[str, Any]]:
        """End of input: fire every pending timer and return what it completed."""
        return self._alerts(self.engine.finish())

    def _alerts(self, output: EngineOutput) -> list[dict[str, Any]]:
        alerts = []
        for match in [*output.matches, *output.timeouts]:
            program = self.compiled.programs[match.rule]
            alerts.append(
                {
                    "rule": program.info.name,
                    "key": self.keys.value(match.key),
                    "time": match.time,
                    "timed_out": match.timed_out,
                    "events": [(program.stage_names[e.stage], e.seq) for e in match.events],
                    "fields": dict(match.fields),
                }
            )
        return alerts
