"""The product engine: `ReferenceEngine`'s API and output, with Numba kernels over arrays.

The Python driver owns event time (per-stream watermarks, lateness, the buffer of events
waiting for the watermark, release in (time, arrival) order) with numpy on whole batches,
and calls one jitted kernel per rule over the released events; per-event and per-partial-
match work happens only inside the kernels. Python objects are built only for outputs
(matches, timeouts, late events), which are rare (`nfa.engine_outputs`).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from nfa.batch import EventBatch, StringPool
from nfa.engine_outputs import OutputBuilder
from nfa.engine_rules import RuleSet
from nfa.engine_snapshot import read_snapshot, write_snapshot
from nfa.event_time import (
    buffer_on_time,
    kernel_columns,
    own_buffer,
    split_late,
    take_released,
)
from nfa.kernel_bounds import drop_oldest_runs, evict_keys
from nfa.kernel_keys import KEY_MAX, live_keys
from nfa.kernel_skip import advance_all, due_rows, flush_all
from nfa.kernel_store import M_DROPPED, OF, drain_outputs, new_state
from nfa.program import Program
from nfa.reference import END_OF_TIME, NO_TIME, EngineConfig
from nfa.results import EngineCounters, EngineOutput

if TYPE_CHECKING:
    from nfa.migrate import CarryOver

__all__ = ["Engine", "EngineConfig"]

I64 = npt.NDArray[np.int64]
PHASE_EVENTS, PHASE_ADVANCE, PHASE_FLUSH = 0, 1, 2


class Engine:
    """Keyed partitions, event time and the NFAs of several rules, in jitted kernels."""

    def __init__(
        self, programs: Sequence[Program], pool: StringPool, config: EngineConfig | None = None
    ):
        self.programs = list(programs)
        self.config = config or EngineConfig()
        self.schema = self.programs[0].schema
        self.pool = pool
        started = time.perf_counter()
        self.ruleset = RuleSet(self.programs, pool, self.config.max_runs_per_key)
        self.states: list[tuple[Any, ...]] = [
            new_state(
                (rule.layout.n_int, rule.layout.n_float, rule.layout.n_count, rule.layout.n_ok),
                (len(rule.layout.ev_int), len(rule.layout.ev_float), len(rule.layout.columns)),
            )
            for rule in self.ruleset.rules
        ]
        self.buffer = EventBatch.empty(self.schema)
        self.stream_max: dict[int, int] = {}
        self.stream_watermark: dict[int, int] = {}
        self.watermark = NO_TIME
        self.order = 0
        self.last_active = np.zeros(0, np.int64)  # per key id, only with config.max_keys
        self.counters = EngineCounters()
        layouts = [rule.layout for rule in self.ruleset.rules]
        self.outputs = OutputBuilder(self.programs, layouts, self.schema, pool)
        self._warm_up()
        self.build_s = time.perf_counter() - started

    # ------------------------------------------------------------------ public API
    def process(self, batch: EventBatch) -> EngineOutput:
        out = EngineOutput()
        n = len(batch)
        self.counters.events_in += n
        if self.config.processing_time:
            self._run_events(batch)
            self._bound()
            self._collect(out)
            return out
        if n:
            keep = self._lateness(batch, out)
            self.buffer = buffer_on_time(self.schema, self.buffer, batch, keep)
        self._release(min(self.stream_watermark.values(), default=NO_TIME))
        self.buffer = own_buffer(self.buffer, batch)
        self._bound()
        self._collect(out)
        return out

    def advance_watermark(self, stream: int, watermark: int) -> EngineOutput:
        """Move one stream's watermark forward (idleness); never backwards."""
        out = EngineOutput()
        if watermark > self.stream_watermark.get(stream, NO_TIME):
            self.stream_watermark[stream] = watermark
        self._release(min(self.stream_watermark.values(), default=NO_TIME))
        self._bound()
        self._collect(out)
        return out

    def finish(self) -> EngineOutput:
        """End of bounded input: release everything and fire every pending timer."""
        out = EngineOutput()
        for stream in range(len(self.schema.streams)):
            self.stream_watermark[stream] = END_OF_TIME
        self._release(END_OF_TIME)
        for r, rule in enumerate(self.ruleset.rules):
            self.states[r] = flush_all(rule.prog, self.states[r], PHASE_FLUSH)
        self._collect(out)
        return out

    def snapshot(self) -> bytes:
        """The engine's state as versioned bytes (see `nfa.engine_snapshot`)."""
        return write_snapshot(self)

    @classmethod
    def restore(
        cls,
        programs: Sequence[Program],
        pool: StringPool,
        data: bytes,
        config: EngineConfig | None = None,
        keep: CarryOver | None = None,
    ) -> Engine:
        """An engine built for `programs` continuing from `snapshot()` bytes; with `keep`,
        from a snapshot of another rule set (`nfa.migrate`)."""
        engine = cls(programs, pool, config)
        read_snapshot(engine, data, keep)
        return engine

    @property
    def compile_seconds(self) -> dict[str, float]:
        """Time spent importing/compiling generated code, per rule and for pure atoms."""
        times = {rule.program.info.name: rule.compile_s for rule in self.ruleset.rules}
        times["(pure atoms)"] = self.ruleset.pure_compile_s
        times["(engine build)"] = getattr(self, "build_s", 0.0)
        return times

    def live_partial_matches(self) -> int:
        return int(sum(int(s[10][2]) for s in self.states))

    def state_bytes(self) -> int:
        return int(sum(a.nbytes for s in self.states for a in s))

    # ------------------------------------------------------------------ event time
    def _lateness(self, batch: EventBatch, out: EngineOutput) -> I64:
        """Indices of the batch's events that are not late (`nfa.event_time.split_late`)."""
        return split_late(
            self.schema, batch, self.stream_max, self.stream_watermark, self.counters, out
        )

    def _release(self, watermark: int) -> None:
        if watermark <= self.watermark and watermark != END_OF_TIME:
            return
        self.watermark = max(self.watermark, watermark)
        released, self.buffer = take_released(self.schema, self.buffer, watermark)
        if released is not None:
            self._run_events(released)
        for r, rule in enumerate(self.ruleset.rules):
            if rule.program.window_ms > 0:
                rows = due_rows(self.states[r], watermark)
                if len(rows):
                    self.states[r] = advance_all(
                        rule.prog, self.states[r], watermark, PHASE_ADVANCE, rows
                    )

    def _bound(self) -> None:
        """`EngineConfig.max_buffered_events`, `max_runs_per_rule` and `max_keys`, in that
        order, as `nfa.reference_bounds`."""
        excess = len(self.buffer) - self.config.max_buffered_events
        if self.config.max_buffered_events and excess > 0:  # the buffer is in arrival order
            self.buffer = self.buffer.slice(excess, len(self.buffer))
            self.counters.events_dropped += excess
        if self.config.max_runs_per_rule:
            for r, rule in enumerate(self.ruleset.rules):
                drop_oldest_runs(rule.prog, self.states[r], self.config.max_runs_per_rule)
        if not self.config.max_keys:
            return
        keys = np.unique(np.concatenate([live_keys(state) for state in self.states]))
        excess = len(keys) - self.config.max_keys
        if excess <= 0:
            return
        last = np.zeros(len(keys), np.int64)
        known = keys < len(self.last_active)
        last[known] = self.last_active[keys[known]]
        victims = keys[np.lexsort((keys, last))[:excess]]
        for state in self.states:
            evict_keys(state, victims)
        self.counters.keys_evicted += excess

    # ------------------------------------------------------------------ kernels
    def _events(self, batch: EventBatch) -> tuple[Any, ...]:
        n = len(batch)
        if n and (int(batch.key.min()) < 0 or int(batch.key.max()) > KEY_MAX):
            raise ValueError(f"key ids must be StringPool ids, 0..{KEY_MAX}")
        order = np.arange(self.order + 1, self.order + 1 + n, dtype=np.int64)
        self.order += n
        return (*kernel_columns(batch), order)

    def _run_events(self, batch: EventBatch) -> None:
        events = self._events(batch)
        if self.config.max_keys and len(batch):
            keys = events[5]
            if keys.max() >= len(self.last_active):
                grown = np.zeros(int(keys.max()) + 1 + len(self.last_active) // 4, np.int64)
                grown[: len(self.last_active)] = self.last_active
                self.last_active = grown
            np.maximum.at(self.last_active, keys, events[7])
        tables = self.ruleset.tables.arrays()
        pure = np.empty((len(self.ruleset.pure_atoms), len(batch)), np.bool_)
        self.ruleset.pure_module.pure_eval(events, tables, pure)
        for r, rule in enumerate(self.ruleset.rules):
            started = time.perf_counter()
            self.states[r] = rule.module.step(
                rule.prog, self.states[r], events, tables, pure, rule.mask
            )
            if not len(batch):  # warm-up: compiling or loading the rule's kernel
                rule.compile_s += time.perf_counter() - started

    def _warm_up(self) -> None:
        """Compile (or load from the cache) every kernel now, not on the first event."""
        order = self.order
        self._run_events(EventBatch.empty(self.schema))
        self.order = order
        for r, rule in enumerate(self.ruleset.rules):
            self.states[r] = advance_all(
                rule.prog, self.states[r], NO_TIME, PHASE_ADVANCE, np.zeros(1, np.int64)
            )
            self.states[r] = flush_all(rule.prog, self.states[r], PHASE_FLUSH)
            drain_outputs(self.states[r])

    def _collect(self, out: EngineOutput) -> None:
        """Drain every rule's outputs and append them in the reference's order."""
        parts: list[tuple[int, tuple[Any, ...]]] = []
        for r, state in enumerate(self.states):
            drained = drain_outputs(state)
            if state[11].shape[0] > 1024:  # a burst of outputs: give the room back
                self.states[r] = (*state[:11], np.zeros((64, OF), np.int64), *state[12:])
            dropped = int(state[10][M_DROPPED])
            if dropped:
                self.counters.partial_matches_dropped += dropped
                state[10][M_DROPPED] = 0
            if len(drained[0]):
                parts.append((r, drained))
        if not parts:
            return
        paused = gc.isenabled()  # outputs are acyclic: no collections while building them
        gc.disable()
        try:
            self.outputs.merge(parts, out)
        finally:
            if paused:
                gc.enable()
