"""The Numba engine against the reference engine on random rules and random streams.

Rules come from `engine_programs.rule_text(seed)` with the seed from a small range, so the
generated kernels are compiled once and then loaded from the cache. Set
CEP_HYPOTHESIS_EXAMPLES to run more (or fewer) examples.
"""

from __future__ import annotations

import itertools
import os

from engine_programs import compiled
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nfa.batch import EventBatch, StringPool, batch_from_records
from nfa.engine import Engine
from nfa.reference import EngineConfig, ReferenceEngine
from nfa.results import EngineOutput

EXAMPLES = int(os.environ.get("CEP_HYPOTHESIS_EXAMPLES", "60"))
SEEDS = 8

event = st.tuples(
    st.integers(0, 2),  # key
    st.one_of(st.none(), st.integers(0, 4)),  # x
    st.one_of(st.none(), st.sampled_from([0.5, 1.0, 2.0, 3.0])),  # y
    st.integers(-2500, 1500),  # time jitter (ms): out of order, sometimes late
)


def _records(
    events: list[tuple[int, int | None, float | None, int]],
) -> list[tuple[str, dict[str, object]]]:
    out: list[tuple[str, dict[str, object]]] = []
    for i, (key, x, y, jitter) in enumerate(events):
        out.append(("s", {"k": f"k{key}", "x": x, "y": y, "ts": 1_000_000 + i * 700 + jitter}))
    return out


def _run(
    seed: int,
    events: list[tuple[int, int | None, float | None, int]],
    cuts: list[int],
    snapshot_at: int,
    advance: bool,
    config: EngineConfig,
    copies: int = 1,
) -> None:
    _, rules = compiled(seed)
    programs = rules.programs * copies  # copies: rules with state of their own
    pool, keys = StringPool(), StringPool()
    batch = batch_from_records(rules.schema, _records(events), pool, keys)
    bounds = sorted({0, len(events), *(c % (len(events) + 1) for c in cuts)})
    reference = ReferenceEngine(programs, pool, config)
    engine = Engine(programs, pool, config)
    want, got = EngineOutput(), EngineOutput()
    for b, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        if b == snapshot_at:
            engine = Engine.restore(programs, pool, engine.snapshot(), config)
        part: EventBatch = batch.slice(lo, hi)
        want.extend(reference.process(part))
        got.extend(engine.process(part))
        assert got == want, (lo, hi)
        if advance and hi > lo:
            time = int(part.ts.max())
            want.extend(reference.advance_watermark(0, time))
            got.extend(engine.advance_watermark(0, time))
    want.extend(reference.finish())
    got.extend(engine.finish())
    assert got.matches == want.matches
    assert got.timeouts == want.timeouts
    assert got.late == want.late
    assert engine.counters == reference.counters


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    seed=st.integers(0, SEEDS - 1),
    events=st.lists(event, max_size=40),
    cuts=st.lists(st.integers(0, 40), max_size=4),
    snapshot_at=st.integers(0, 4),
    advance=st.booleans(),
)
def test_engine_equals_reference(
    seed: int,
    events: list[tuple[int, int | None, float | None, int]],
    cuts: list[int],
    snapshot_at: int,
    advance: bool,
) -> None:
    _run(seed, events, cuts, snapshot_at, advance, EngineConfig())


@settings(max_examples=max(EXAMPLES // 4, 5), deadline=None)
@given(
    seed=st.integers(0, SEEDS - 1),
    events=st.lists(event, max_size=30),
    cuts=st.lists(st.integers(0, 30), max_size=3),
    processing_time=st.booleans(),
    max_runs=st.integers(1, 4),
    max_runs_rule=st.integers(0, 5),
    max_keys=st.integers(0, 2),
    max_buffered=st.integers(0, 4),
    advance=st.booleans(),
    copies=st.integers(1, 2),
)
def test_engine_equals_reference_bounded(
    seed: int,
    events: list[tuple[int, int | None, float | None, int]],
    cuts: list[int],
    processing_time: bool,
    max_runs: int,
    max_runs_rule: int,
    max_keys: int,
    max_buffered: int,
    advance: bool,
    copies: int,
) -> None:
    config = EngineConfig(
        max_runs_per_key=max_runs,
        max_runs_per_rule=max_runs_rule,
        processing_time=processing_time,
        max_keys=max_keys,
        max_buffered_events=max_buffered,
    )
    _run(seed, events, cuts, 1, advance, config, copies)
