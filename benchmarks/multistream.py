"""Shared parts of the multi-stream rule workloads (`engine_ato`, `engine_absence`).

A shipped rule is compiled against the shipped stream declarations (`patterns/streams.cep`),
by default only the streams the rule reads (`--all-streams`: all seven, as a daemon loading
`patterns/` has them, so every batch carries every stream's columns). Events are generated
with numpy as compact per-field arrays (`Columns`, one entry per event, -1 or NaN = null)
and widened into an `EventBatch` of the schema's columns per batch, outside the timed
section, so memory holds the compact form only and the timing covers the engine alone.
String fields no rule reads are left invalid, as the service's decoder leaves them.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cep import ast
from cep.compiler import CompiledRules, compile_rules
from cep.loader import load_text
from nfa.batch import EventBatch, StringPool
from nfa.engine import Engine
from nfa.program import Program
from nfa.reference import ReferenceEngine
from nfa.results import EngineOutput, Match

PATTERNS = Path(__file__).resolve().parent.parent / "patterns"
EPOCH_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MINUTE_MS = 60_000


def load_rule(
    rule_file: str,
    rule: str,
    all_streams: bool = False,
    edits: Sequence[tuple[str, str]] = (),
) -> CompiledRules:
    """The shipped `rule` from `patterns/<rule_file>` with the shipped stream declarations;
    `edits` are (old, new) text replacements in the rule file (variants of the rule)."""
    loaded = ast.RuleFile()
    for path in (PATTERNS / "streams.cep", PATTERNS / rule_file):
        text = path.read_text(encoding="utf-8")
        for old, new in edits if path.name == rule_file else ():
            if old not in text:
                raise ValueError(f"{old!r} is not in {path}")
            text = text.replace(old, new)
        loaded = loaded.merged(load_text(text, str(path)).rule_file)
    (chosen,) = [r for r in loaded.rules if r.name == rule]
    streams = loaded.streams
    if not all_streams:
        streams = tuple(s for s in streams if s.name in chosen.streams)
    return compile_rules(ast.RuleFile(streams, loaded.consts, (chosen,)))


@dataclass
class Columns:
    """Events in time order as compact arrays; `batch(lo, hi)` widens them for the engine.

    `values` holds one array per source (int: the value or a `StringPool` id, -1 for null;
    float: NaN for null); `sources` maps a schema column name ("stream.field") to its source.
    Columns without a source stay invalid (null) in every batch.
    """

    programs: Sequence[Program]
    stream: npt.NDArray[np.int8]
    key: npt.NDArray[np.int64]
    ts: npt.NDArray[np.int64]
    values: dict[str, npt.NDArray[Any]]
    sources: dict[str, str]

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def nbytes(self) -> int:
        arrays: list[npt.NDArray[Any]] = [self.stream, self.key, self.ts, *self.values.values()]
        unique = {id(a): a for a in arrays}  # "ts" is both a field and the event time
        return int(sum(a.nbytes for a in unique.values()))

    def batch(self, lo: int, hi: int) -> EventBatch:
        schema = self.programs[0].schema
        n = hi - lo
        stream = self.stream[lo:hi]
        floats = np.zeros((schema.n_float, n), np.float64)
        ints = np.zeros((schema.n_int, n), np.int64)
        valid = np.zeros((len(schema.columns), n), np.bool_)
        for c, column in enumerate(schema.columns):
            source = self.sources.get(column.name)
            if source is None:
                continue
            values = self.values[source][lo:hi]
            if column.type.stored_as_float:
                ok = (stream == column.stream) & ~np.isnan(values)
                floats[column.slot] = np.where(ok, values, 0.0)
            else:
                ok = (stream == column.stream) & (values >= 0)
                ints[column.slot] = np.where(ok, values, 0)
            valid[c] = ok
        seq = np.arange(lo, hi, dtype=np.int64)
        return EventBatch(
            stream.copy(), self.key[lo:hi].copy(), self.ts[lo:hi].copy(), seq, floats, ints, valid
        )

    def batches(self, size: int, stop: int | None = None) -> Iterator[EventBatch]:
        end = len(self) if stop is None else min(stop, len(self))
        for lo in range(0, end, size):
            yield self.batch(lo, min(lo + size, end))


def interned(pool: StringPool, names: Sequence[str]) -> npt.NDArray[np.int64]:
    """Pool ids of `names`, in order."""
    return np.array([pool.intern(name) for name in names], np.int32)


def time_order(parts: Sequence[dict[str, npt.NDArray[Any]]]) -> dict[str, npt.NDArray[Any]]:
    """Concatenate parts with the same fields, then sort every field by "ts" (stable)."""
    merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = np.argsort(merged["ts"], kind="stable")
    return {k: v[order] for k, v in merged.items()}


@dataclass
class Emitted:
    """A match and the newest event time fed to the engine when it came out."""

    match: Match
    fed_ms: int
    watermark: int  # the engine's watermark after the call that returned it
    phase: str  # "process", "idle" (advance_watermark after input stopped) or "finish"


@dataclass
class Run:
    """What `run_product` measured.

    events_per_s: events over the time spent in engine calls (process, the idle advance,
    finish). batch_ms: wall time of each `process` call. emit_lag_event_s: for matches
    returned by `process`, event time from the match's decision time (its last event, or
    the end of an absence window) to the newest event fed so far; at least the streams'
    30 s out-of-orderness, plus up to a batch's span of event time. state_bytes: allocated
    state arrays after `finish` (capacity slack counts), divided by the peak number of
    live partial matches, as `benchmarks.engine_card_testing` computes it.
    """

    events: int = 0
    seconds: float = 0.0
    batch_ms: list[float] = field(default_factory=list)
    emitted: list[Emitted] = field(default_factory=list)
    peak_partial_matches: int = 0
    state_bytes: int = 0
    late: int = 0
    idle_s: float = 0.0

    def figures(self) -> dict[str, Any]:
        ms = np.array(self.batch_ms or [0.0])
        during = [e for e in self.emitted if e.phase == "process"]
        lag = np.array([(e.fed_ms - e.match.time) / 1000 for e in during] or [0.0])
        return {
            "events_per_s": round(self.events / self.seconds),
            "seconds": round(self.seconds, 3),
            "batch_ms_p50": round(float(np.percentile(ms, 50)), 2),
            "batch_ms_p99": round(float(np.percentile(ms, 99)), 2),
            "batch_ms_max": round(float(ms.max()), 2),
            "matches": len(self.emitted),
            "emit_lag_event_s_p50": round(float(np.percentile(lag, 50)), 1),
            "emit_lag_event_s_p99": round(float(np.percentile(lag, 99)), 1),
            "peak_partial_matches": self.peak_partial_matches,
            "state_bytes": self.state_bytes,
            "state_bytes_per_partial_match": round(
                self.state_bytes / max(self.peak_partial_matches, 1)
            ),
            "late_events": self.late,
        }


def run_product(
    engine: Engine, columns: Columns, batch: int, idle_after_ms: int | None = None
) -> Run:
    """Feed every event in batches (only engine calls timed), then finish.

    With `idle_after_ms`, before `finish` every stream's watermark is advanced to the last
    event time plus that much, as the daemon's idleness does when input stops: what fires
    then fires on timers alone, every key being quiet.
    """
    run = Run(events=len(columns))
    fed = -(2**62)
    gc.collect()
    for part in columns.batches(batch):
        started = time.perf_counter()
        out = engine.process(part)
        took = time.perf_counter() - started
        run.seconds += took
        run.batch_ms.append(took * 1000)
        fed = max(fed, int(part.ts[-1]))
        _collect(run, out, fed, engine.watermark, "process")
        run.peak_partial_matches = max(run.peak_partial_matches, engine.live_partial_matches())
    if idle_after_ms is not None:
        started = time.perf_counter()
        for s in range(len(engine.schema.streams)):
            out = engine.advance_watermark(s, fed + idle_after_ms)
            _collect(run, out, fed + idle_after_ms, engine.watermark, "idle")
        run.idle_s = time.perf_counter() - started
        run.seconds += run.idle_s
    started = time.perf_counter()
    out = engine.finish()
    run.seconds += time.perf_counter() - started
    _collect(run, out, fed, engine.watermark, "finish")
    run.state_bytes = engine.state_bytes()
    return run


def _collect(run: Run, out: EngineOutput, fed: int, watermark: int, phase: str) -> None:
    run.emitted.extend(Emitted(m, fed, watermark, phase) for m in out.matches)
    run.late += len(out.late)


def compare_prefix(
    programs: Sequence[Program], pool: StringPool, columns: Columns, prefix: int, batch: int
) -> dict[str, Any]:
    """A fresh product engine and the reference engine on the first `prefix` events, then
    `finish`: events/s of each and whether they returned the same outputs."""
    engines: dict[str, Engine | ReferenceEngine] = {
        "product": Engine(programs, pool),
        "reference": ReferenceEngine(programs, pool),
    }
    outputs: dict[str, EngineOutput] = {}
    speeds: dict[str, int] = {}
    n = min(prefix, len(columns))
    parts = list(columns.batches(batch, n))
    for name, engine in engines.items():
        out = EngineOutput()
        started = time.perf_counter()
        for part in parts:
            out.extend(engine.process(part))
        out.extend(engine.finish())
        speeds[name] = round(n / (time.perf_counter() - started))
        outputs[name] = out
    got, want = outputs["product"], outputs["reference"]
    return {
        "prefix_events": n,
        "prefix_matches": len(want.matches),
        "prefix_same_outputs": got.matches == want.matches
        and got.timeouts == want.timeouts
        and got.late == want.late,
        "prefix_product_events_per_s": speeds["product"],
        "reference_events_per_s": speeds["reference"],
        "product_over_reference": round(speeds["product"] / speeds["reference"], 1),
    }


def rss_mb() -> float:
    """Resident memory of this process now, in MiB (Linux)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def build_and_memory(
    engine: Engine,
    generate_s: float,
    columns: Any,
    pool: StringPool,
    rss: tuple[float, float, float],
) -> dict[str, Any]:
    """The figures every workload reports about building and memory: the engine's build
    time, input generation, the input's size, the pool, and RSS after generating, at its
    peak while generating and after the product run."""
    rss_data, peak_data, peak_product = rss
    return {
        "engine_build_s": round(engine.build_s, 3),
        "generate_s": round(generate_s, 2),
        "input_compact_mb": round(columns.nbytes / 2**20, 1),
        "pool_strings": len(pool),
        "rss_after_generating_mb": rss_data,
        "peak_rss_generating_mb": peak_data,
        "peak_rss_product_run_mb": peak_product,
    }
