"""The running rule set of the daemon: which engine runs it, and swapping it for another.

`RuleSetMixin` is a part of `service.app.Service`, kept apart so each module stays
readable: `_install` makes a compiled rule set the running one, `apply_rules` swaps in
another between two batches (hot reload, `service.reload`), moving every partition group's
state through its checkpoint encoding so unchanged rules continue (`nfa.migrate`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from cep.compiler import CompiledRules
from cep.parser import parse_duration
from nfa.program import Schema
from nfa.reference import EngineConfig, ReferenceEngine
from nfa.rowpattern_rule import SqlProgram
from service.collectors import live_partial_matches
from service.config import EngineBounds, ServiceConfig
from service.metrics import Metrics
from service.partition import EngineKind, EngineKindOf, PartitionState, RuleSetIdentity
from service.rule_alerts import MixedKind, RuleProgram


def engine_kind(
    name: str,
    schema: Schema,
    sql_programs: Sequence[SqlProgram] = (),
    bounds: EngineBounds | None = None,
) -> EngineKind:
    """The engine class chosen in the config, in processing-time mode (match on arrival,
    nothing is late) when every stream is a processing-time stream, with the config's
    `bounds`; with SQL rules, a mixed engine (`nfa.mixed`) holding it and the SQL engine
    (`nfa.sql_engine`: on kernels with `numba`, the Python row-pattern engine with
    `reference`)."""
    bounds = bounds or EngineBounds()
    config = EngineConfig(
        max_runs_per_key=bounds.max_runs_per_key,
        max_runs_per_rule=bounds.max_runs_per_rule,
        max_keys=bounds.max_keys,
        max_buffered_events=bounds.max_buffered_events,
        processing_time=all(s.processing_time for s in schema.streams),
    )
    engine: Any = ReferenceEngine
    if name == "numba":
        from nfa.engine import Engine

        engine = Engine
    if sql_programs:
        return MixedKind(sql_programs, engine, engine.restore, config, jit=name == "numba")
    return EngineKindOf(
        lambda programs, pool: engine(programs, pool, config),
        lambda programs, pool, data, keep=None: engine.restore(programs, pool, data, config, keep),
    )


class RuleSetMixin:
    config: ServiceConfig
    metrics: Metrics
    partitions: dict[int, PartitionState]

    def _partition(
        self, number: int, snapshot: bytes | None = None, offsets: dict[str, int] | None = None
    ) -> PartitionState:
        raise NotImplementedError  # service.app.Service

    def _install(self, rules: CompiledRules) -> None:
        """Make `rules` (their enabled rules) the running rule set."""
        self.compiled = rules
        self.programs = [p for p in rules.programs if p.info.enabled]
        sql_programs = [p for p in rules.sql_programs if p.info.enabled]
        self.sql_programs = sql_programs  # on the row-pattern engine
        self.rules: list[RuleProgram] = [*self.programs, *sql_programs]  # match.rule order
        self.schema = rules.schema
        self.identity = RuleSetIdentity.of(self.programs, sql_programs)
        self.engine_kind = engine_kind(
            self.config.engine, self.schema, sql_programs, self.config.bounds
        )
        self.cooldown_ms = [self._cooldown(p.info.name) for p in self.rules]

    def apply_rules(self, rules: CompiledRules) -> dict[str, int]:
        """Swap in another rule set (same streams) between two batches, for every partition
        group at once: each group's state goes through its checkpoint encoding and is
        restored rule by rule (`service.partition.new_partition`). If any group fails, the
        old rule set stays. Returns the partial matches dropped per old rule name."""
        old_compiled, old_rules = self.compiled, self.rules
        old_identities = [*self.identity.nfa, *self.identity.sql]  # in old_rules' order
        self._install(rules)
        kept = {*self.identity.nfa, *self.identity.sql}
        gone = [i for i, identity in enumerate(old_identities) if identity not in kept]
        try:
            swapped = {
                number: self._partition(number, state.encode(), state.next_offsets)
                for number, state in self.partitions.items()
            }
        except Exception:
            self._install(old_compiled)
            raise
        dropped: dict[str, int] = defaultdict(int)
        for number, state in self.partitions.items():
            counts = live_partial_matches(state.engine, len(old_rules))
            for i in gone:
                if counts[i]:
                    dropped[old_rules[i].info.name] += counts[i]
            swapped[number].last_event_ms = state.last_event_ms
            swapped[number].dirty = True  # the next checkpoint records the new rules
        self.partitions = swapped
        for name, count in dropped.items():
            self.metrics.reload_dropped.labels(name).inc(count)
        return dict(dropped)

    def _cooldown(self, rule: str) -> int:
        settings = self.config.rule_settings.get(rule)
        return parse_duration(settings.cooldown).millis if settings and settings.cooldown else 0
