"""Reading a running service from other threads: state gauges at scrape time, live partial
matches, and the loop thread that answers both.

The run loop owns the engines, so questions about them (how many partial matches per rule,
which partial matches one key has, the consumer's lag) are queued with `LoopCalls` and
answered by the loop between two iterations: the answer describes whole batches, and the
loop never takes a lock. `StateCollector` asks at scrape time, so nothing is counted in
the hot loop.

Partial matches are read from the engines' own structures: `ReferenceEngine.states`
(per (key, rule) a list of `Run`s) and the product engine's per-rule state arrays (per key
a linked list of run rows, each pointing into the shared tree of taken events; the layout
is described in `nfa.kernel_store`).
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from nfa.batch import StringPool
from nfa.expr import Type
from nfa.interpret import Value
from nfa.program import Schema
from nfa.reference import NO_TIME, ReferenceEngine

log = logging.getLogger("cep.service")
T = TypeVar("T")


class NotSupported(Exception):
    """The engine in use cannot answer this question."""


# ---------------------------------------------------------------------- the loop thread
class LoopCalls:
    """Functions run on the loop thread between iterations, for callers on other threads.

    Until the loop binds itself (and after it unbinds) calls run on the caller's thread.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]]]
        self._queue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def bind(self) -> None:
        """The calling thread is the loop from now on."""
        self._thread = threading.current_thread()

    def unbind(self) -> None:
        """The loop has stopped: answer what is queued here, run later calls inline."""
        self._thread = None
        self.run_pending()

    def call(self, fn: Callable[[], T], timeout: float) -> T:
        """`fn()` as run by the loop; `TimeoutError` if the loop does not get to it in time."""
        loop = self._thread
        if loop is None or loop is threading.current_thread():
            return fn()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._queue.put((fn, future))
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"the run loop did not answer within {timeout:g} s") from None

    def run_pending(self) -> None:
        """Run every queued call (on the loop thread, between iterations)."""
        while True:
            try:
                fn, future = self._queue.get_nowait()
            except queue.Empty:
                return
            if not future.set_running_or_notify_cancel():
                continue  # the caller gave up
            try:
                future.set_result(fn())
            except Exception as exc:
                future.set_exception(exc)


# ---------------------------------------------------------------------- partial matches
@dataclass(frozen=True)
class TakenEvent:
    """An event a partial match has taken: its stage, sequence number, time and values
    (by schema column; strings as ids of the partition's string pool)."""

    stage: int
    seq: int
    ts: int
    values: tuple[Value, ...]
    kept: frozenset[int] | None = None  # the columns whose values are known; None: all


@dataclass(frozen=True)
class PartialRun:
    state: int  # automaton state (`Program.state_names`)
    start: int  # event time of its first event
    events: tuple[TakenEvent, ...]


def cep_engine(engine: object) -> object | None:
    """The engine that runs the NFA programs: `engine` itself, or the CEP part of a mixed
    engine (`nfa.mixed`, DSL and SQL rules; None when it has no DSL rule)."""
    if hasattr(engine, "n_programs") and hasattr(engine, "cep"):
        inner: object | None = engine.cep
        return inner
    return engine


def partial_runs(engine: object, rule: int, key: int) -> list[PartialRun]:
    """The live partial matches of one key for one NFA rule (its index among the engine's
    programs, and the key id), in priority order; `NotSupported` for an engine whose state
    this cannot read."""
    engine = cep_engine(engine)
    if engine is None:
        return []
    if isinstance(engine, ReferenceEngine):
        state = engine.states.get((key, rule))
        if state is None:
            return []
        return [
            PartialRun(
                run.state,
                run.start.ts,
                tuple(TakenEvent(stage, e.seq, e.ts, e.values) for stage, e in run.taken),
            )
            for run in state.runs
            if run.start is not None
        ]
    states = _product_states(engine)
    return _product_runs(engine, rule, states[rule], key)


def live_partial_matches(engine: object, n_rules: int) -> list[int]:
    """Live partial matches per NFA rule index (including completed ones a skip strategy
    holds back); `NotSupported` for an engine whose state this cannot read."""
    counts = [0] * n_rules
    engine = cep_engine(engine)
    if engine is None:
        return counts
    if isinstance(engine, ReferenceEngine):
        for (_, rule), state in list(engine.states.items()):
            counts[rule] += sum(r.start is not None for r in state.runs) + len(state.completed)
        return counts
    try:
        from nfa.kernel_store import M_LIVE_RUNS

        for rule, arrays in enumerate(_product_states(engine)[:n_rules]):
            counts[rule] = int(arrays[10][M_LIVE_RUNS])
    except (ImportError, IndexError) as exc:
        raise NotSupported(f"cannot count the engine's partial matches ({exc!r})") from exc
    return counts


def _product_states(engine: object) -> list[tuple[Any, ...]]:
    states = getattr(engine, "states", None)
    if not isinstance(states, list) or not hasattr(engine, "ruleset"):
        raise NotSupported(
            f"the {type(engine).__name__} engine cannot list partial matches; "
            "run with `engine: reference` to inspect them"
        )
    return states


def _product_runs(engine: Any, rule: int, arrays: tuple[Any, ...], key: int) -> list[PartialRun]:
    """One key's partial matches from the product engine's state arrays, or `NotSupported`
    when their layout is not the one this reads (a newer engine: update this reader)."""
    try:
        return _walk_runs(engine, rule, arrays, key)
    except (ImportError, AttributeError, IndexError, KeyError, ValueError) as exc:
        raise NotSupported(
            f"cannot read the {type(engine).__name__} engine's state ({exc!r}); "
            "run with `engine: reference` to inspect partial matches"
        ) from exc


def _walk_runs(engine: Any, rule: int, arrays: tuple[Any, ...], key: int) -> list[PartialRun]:
    """Walk one key's run list (layout in `nfa.kernel_store`): per key with state a row of
    `K` (found through the rule's key table, `nfa.kernel_keys`) with the head of a list of
    run rows; per run its state, start time (`RT`) and last taken node; nodes link to their
    parent and to an event slot with the event's time and sequence (`EVT`) and values.

    Taken events keep only the columns the rule's outputs read (`nfa.kernel_layout`): the
    other fields are not known here."""
    from nfa.kernel_keys import key_row
    from nfa.kernel_store import (
        K_RUNS,
        N_EV,
        N_PARENT,
        N_STAGE,
        R_NEXT,
        R_NODE,
        R_STATE,
        T_TS,
        V_SEQ,
        V_TS,
    )

    R, N, EVI, EVF, EVV, K = (arrays[i] for i in (0, 5, 6, 7, 8, 9))
    RT, EVT = arrays[13], arrays[14]
    columns = engine.schema.columns
    layout = engine.ruleset.rules[rule].layout  # stored: (schema column, valid row, slot)
    stored = [(c, v, layout.value_index[c]) for v, c in enumerate(layout.columns)]
    kept = frozenset(layout.columns)
    out: list[PartialRun] = []
    row = key_row(arrays, key)
    if row < 0:
        return out
    run, budget = int(K[row, K_RUNS]), R.shape[0]  # the budget guards against a torn list
    while run >= 0 and budget > 0:
        budget -= 1
        chain: list[int] = []
        node = int(R[run, R_NODE])
        while node >= 0 and len(chain) < N.shape[0]:
            chain.append(node)
            node = int(N[node, N_PARENT])
        events = []
        for node in reversed(chain):
            slot = int(N[node, N_EV])
            values: list[Value] = [None] * len(columns)
            for c, valid_row, value_slot in stored:
                column = columns[c]
                if not EVV[slot, valid_row]:
                    continue
                if column.type.stored_as_float:
                    values[c] = float(EVF[slot, value_slot])
                elif column.type is Type.BOOL:
                    values[c] = bool(EVI[slot, value_slot])
                else:
                    values[c] = int(EVI[slot, value_slot])
            seq, ts = int(EVT[slot, V_SEQ]), int(EVT[slot, V_TS])
            stage = int(N[node, N_STAGE])
            events.append(TakenEvent(stage, seq, ts, tuple(values), kept))
        out.append(PartialRun(int(R[run, R_STATE]), int(RT[run, T_TS]), tuple(events)))
        run = int(R[run, R_NEXT])
    return out


def event_fields(
    schema: Schema,
    stream: int,
    values: Sequence[Value],
    pool: StringPool,
    kept: frozenset[int] | None = None,
) -> dict[str, object]:
    """One event's fields by name (its stream's columns, those in `kept` when given),
    strings decoded from `pool`."""
    out: dict[str, object] = {}
    for c, (column, value) in enumerate(zip(schema.columns, values, strict=False)):
        if column.stream == stream and (kept is None or c in kept):
            string = value is not None and column.type is Type.STRING
            out[column.field] = pool.value(int(value or 0)) if string else value
    return out


# ---------------------------------------------------------------------- scrape-time gauges
@dataclass(frozen=True)
class StateSample:
    """What `StateCollector` reports, read by the loop thread in one go."""

    partial_matches: dict[str, int]  # rule -> live partial matches
    watermark_lag: dict[tuple[str, int], float]  # (stream, partition) -> seconds
    consumer_lag: dict[tuple[str, int], int]  # (topic, partition) -> messages
    pool_entries: dict[str, int] = field(default_factory=dict)  # "strings"/"keys" -> entries


def sample_service(service: Any, now: float) -> StateSample:
    """Read the gauges' values from a `service.app.Service` (on its loop thread). Rules
    whose partial matches cannot be counted (SQL rules) are left out."""
    names = [p.info.name for p in service.programs]  # the NFA programs
    matches = dict.fromkeys(names, 0)
    watermark_lag: dict[tuple[str, int], float] = {}
    pools = {"strings": 0, "keys": 0}
    for number, state in list(service.partitions.items()):
        pools["strings"] += state.pool.live
        pools["keys"] += state.keys.live
        try:
            counts = live_partial_matches(state.engine, len(names))
        except NotSupported as exc:
            log.debug("partial matches not counted: %s", exc)
            counts = []
        for rule, count in enumerate(counts):
            matches[names[rule]] += count
        engine = cep_engine(state.engine)
        for stream, watermark in getattr(engine, "stream_watermark", {}).items():
            if watermark > NO_TIME:
                name = service.schema.streams[stream].name
                watermark_lag[(name, number)] = max(0.0, now - watermark / 1000)
    return StateSample(matches, watermark_lag, consumer_lag(service.consumer), pools)


def consumer_lag(consumer: Any) -> dict[tuple[str, int], int]:
    """Per assigned partition: the log end offset (as of the last fetch, cached by the client)
    minus the consumer's position; partitions where either is not known yet are left out."""
    try:
        positions = consumer.position(consumer.assignment())
    except Exception as exc:  # a closed consumer, or a broker hiccup: no lag this scrape
        log.debug("consumer lag unavailable: %s", exc)
        return {}
    lag: dict[tuple[str, int], int] = {}
    for tp in positions:
        try:
            _, high = consumer.get_watermark_offsets(tp, cached=True)
        except Exception:  # noqa: S112 - unknown for this partition; skip it
            continue
        if high >= 0 and tp.offset >= 0:
            lag[(tp.topic, tp.partition)] = max(0, high - tp.offset)
    return lag


class StateCollector(Collector):
    """Gauges computed at scrape time from `sample()` (None while there is nothing to read)."""

    def __init__(self, sample: Callable[[], StateSample | None]):
        self.sample = sample

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield from self._families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        started = time.perf_counter()
        try:
            sample = self.sample()
        except Exception as exc:  # a slow loop must not fail the whole scrape
            log.warning("state metrics skipped: %s", exc)
            sample = None
        yield from self._families(sample)
        log.debug("state metrics read in %.1f ms", (time.perf_counter() - started) * 1000)

    @staticmethod
    def _families(sample: StateSample | None = None) -> Iterator[GaugeMetricFamily]:
        matches = GaugeMetricFamily("cep_partial_matches", "Live partial matches", labels=["rule"])
        watermark = GaugeMetricFamily(
            "cep_watermark_lag_seconds",
            "Wall clock minus the stream's watermark (event time)",
            labels=["stream", "partition"],
        )
        lag = GaugeMetricFamily(
            "cep_consumer_lag",
            "Messages between the consumer's position and the log end",
            labels=["topic", "partition"],
        )
        pools = GaugeMetricFamily(
            "cep_pool_entries",
            "Strings and keys the partition groups' pools hold (compacted at checkpoints)",
            labels=["pool"],
        )
        if sample is not None:
            for pool, entries in sorted(sample.pool_entries.items()):
                pools.add_metric([pool], entries)
            for rule, count in sorted(sample.partial_matches.items()):
                matches.add_metric([rule], count)
            for (stream, number), seconds in sorted(sample.watermark_lag.items()):
                watermark.add_metric([stream, str(number)], seconds)
            for (topic, number), messages in sorted(sample.consumer_lag.items()):
                lag.add_metric([topic, str(number)], messages)
        yield from (matches, watermark, lag, pools)
