"""`nfa.sql_engine.SqlEngine`: SQL rules split between kernels and Python, as one engine.

Its outputs must be one `RowPatternEngine`'s over all the rules (same matches, same order),
across snapshots, across a change of rules (`keep`), and when it restores a snapshot that a
`RowPatternEngine` took (a checkpoint from before SQL rules ran on kernels).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from cep.compiler import CompiledRules
from cep.loader import load_text
from nfa.batch import EventBatch, StringPool, batch_from_records
from nfa.reference import EngineConfig
from nfa.results import EngineOutput
from nfa.rowpattern_jit import JitRowPatternEngine, kernel_supported
from nfa.rowpattern_rule import SqlProgram
from nfa.rowpattern_stream import RowPatternEngine
from nfa.sql_engine import SqlEngine

STREAM = (
    "stream s key k time ts out_of_order 1s "
    "fields { k: string, x: int, y: float, kind: string, ts: timestamp }"
)
QUERIES = {
    # on kernels
    "climb": (
        "MEASURES FIRST(A.x) AS lo, LAST(B.x) AS hi, count(B.*) AS steps, MATCH_NUMBER() AS m "
        "AFTER MATCH SKIP TO NEXT ROW PATTERN (A B+ C) "
        "DEFINE A AS x = 0, B AS x > PREV(x), C AS x < PREV(x) AND kind = 'a'"
    ),
    "either": (
        "MEASURES CLASSIFIER() AS c, sum(y) AS total AFTER MATCH SKIP PAST LAST ROW "
        "PATTERN (A (B | C)+ D) WITHIN INTERVAL '5' SECOND "
        "DEFINE A AS x = 1, B AS x >= 2, C AS x >= 3, D AS x = 0 OR x IS NULL"
    ),
    "quiet": (
        "MEASURES LAST(B.x) AS b, count(*) AS n AFTER MATCH SKIP PAST LAST ROW "
        "PATTERN (A B+? NOT FOLLOWED BY C) WITHIN INTERVAL '3' SECOND "
        "DEFINE A AS x = 1, B AS x >= 2, C AS x = 0 AND y > A.y"
    ),
    "rows": (
        "MEASURES RUNNING count(*) AS n ALL ROWS PER MATCH AFTER MATCH SKIP PAST LAST ROW "
        "PATTERN (A B) DEFINE A AS x = 2, B AS x = 3"
    ),
    # in Python: LIKE; ALL ROWS PER MATCH with exclusion
    "like": (
        "MEASURES count(*) AS n AFTER MATCH SKIP PAST LAST ROW "
        "PATTERN (A B+) WITHIN INTERVAL '3' SECOND "
        "DEFINE A AS kind LIKE 'a%', B AS x > A.x"
    ),
    "hidden": (
        "MEASURES RUNNING sum(x) AS s ALL ROWS PER MATCH AFTER MATCH SKIP PAST LAST ROW "
        "PATTERN (A {- B+ -} C) DEFINE A AS x = 1, B AS x = 2, C AS x = 3"
    ),
}


def _rules(names: list[str]) -> CompiledRules:
    rules = "\n".join(
        f"  - name: {name}\n    sql: |\n      SELECT * FROM s MATCH_RECOGNIZE ("
        f"PARTITION BY k ORDER BY ts {QUERIES[name]})"
        for name in names
    )
    return load_text(f"streams: |\n  {STREAM}\nrules:\n{rules}\n", "r.yaml").compile(
        sql_on_nfa=False
    )


def _events(seed: int, n: int, pool: StringPool, keys: StringPool, rules: Any) -> EventBatch:
    rng = random.Random(seed)
    records = [
        (
            "s",
            {
                "k": f"k{rng.randint(0, 3)}",
                "x": rng.choice([0, 1, 2, 3, 4, None]),
                "y": rng.choice([0.5, 1.5, None]),
                "kind": rng.choice(["a", "ab", "b", None]),
                "ts": 1_000_000 + i * 400 + rng.choice([0, 0, -900, -1500, 300]),
            },
        )
        for i in range(n)
    ]
    return batch_from_records(rules.schema, records, pool, keys)


def _run(engine: Any, batch: EventBatch, cuts: list[int]) -> list[EngineOutput]:
    outs = []
    for lo, hi in zip([0, *cuts], [*cuts, len(batch)], strict=True):
        outs.append(engine.process(batch.slice(lo, hi)))
    outs.append(engine.finish())
    return outs


def _python(programs: Sequence[SqlProgram], batch: EventBatch, pool: StringPool) -> list[Any]:
    return [(o.matches, o.late) for o in _run(RowPatternEngine(programs, pool), batch, CUTS)]


CUTS = [40, 41, 90, 200, 330]
ALL = ["climb", "rows", "either", "like", "quiet", "hidden"]


def test_rules_are_split_between_kernels_and_python() -> None:
    rules = _rules(ALL)
    on_kernels = [kernel_supported(p) for p in rules.sql_programs]
    assert on_kernels == [True, True, True, False, True, False]
    engine = SqlEngine(rules.sql_programs, StringPool())
    assert engine.fast_rules == [0, 1, 2, 4] and engine.slow_rules == [3, 5]
    assert SqlEngine(rules.sql_programs, StringPool(), jit=False).fast is None


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_outputs_equal_one_python_engine(seed: int) -> None:
    rules = _rules(ALL)
    pool, keys = StringPool(), StringPool()
    batch = _events(seed, 400, pool, keys, rules)
    expected = _python(rules.sql_programs, batch, pool)
    got = [(o.matches, o.late) for o in _run(SqlEngine(rules.sql_programs, pool), batch, CUTS)]
    assert got == expected
    assert {m.rule for matches, _ in got for m in matches} == {0, 1, 2, 3, 4, 5}


@pytest.mark.parametrize("at", [0, 2, 4])
def test_snapshot_and_restore_continue_the_same(at: int) -> None:
    rules = _rules(ALL)
    pool, keys = StringPool(), StringPool()
    batch = _events(7, 400, pool, keys, rules)
    expected = _python(rules.sql_programs, batch, pool)
    engine = SqlEngine(rules.sql_programs, pool)
    got = []
    for i, (lo, hi) in enumerate(zip([0, *CUTS], [*CUTS, len(batch)], strict=True)):
        if i == at:
            engine = SqlEngine.restore(rules.sql_programs, pool, engine.snapshot())
        out = engine.process(batch.slice(lo, hi))
        got.append((out.matches, out.late))
    out = engine.finish()
    got.append((out.matches, out.late))
    assert got == expected


@pytest.mark.parametrize("at", [1, 3])
def test_a_python_engine_snapshot_moves_to_kernels(at: int) -> None:
    """A checkpoint of the Python engine (rows and waiting events as Python values)
    continues on the kernels exactly as the Python engine would have."""
    rules = _rules(ALL)
    pool, keys = StringPool(), StringPool()
    batch = _events(5, 400, pool, keys, rules)
    expected = _python(rules.sql_programs, batch, pool)
    engine: Any = RowPatternEngine(rules.sql_programs, pool)
    got = []
    for i, (lo, hi) in enumerate(zip([0, *CUTS], [*CUTS, len(batch)], strict=True)):
        if i == at:
            engine = SqlEngine.restore(rules.sql_programs, pool, engine.snapshot())
            assert engine.fast is not None and engine.fast.live_rows() > 0
        out = engine.process(batch.slice(lo, hi))
        got.append((out.matches, out.late))
    out = engine.finish()
    got.append((out.matches, out.late))
    assert got == expected


def test_a_change_of_rules_keeps_the_rules_that_continue() -> None:
    """Rules renumbered and one removed: the rules that continue go on as uninterrupted."""
    before, after = _rules(ALL), _rules(["either", "like", "climb", "quiet"])
    pool, keys = StringPool(), StringPool()
    batch = _events(9, 400, pool, keys, before)
    head, tail = batch.slice(0, 200), batch.slice(200, len(batch))
    engine = SqlEngine(before.sql_programs, pool)
    engine.process(head)
    keep: list[int | None] = [2, 3, 0, 4]
    moved = SqlEngine.restore(after.sql_programs, pool, engine.snapshot(), keep=keep)
    got = [o.matches for o in (moved.process(tail), moved.finish())]
    reference = RowPatternEngine(before.sql_programs, pool)
    reference.process(head)
    renumber = {2: 0, 3: 1, 0: 2, 4: 3}
    expected = [
        sorted(
            (replace(m, rule=renumber[m.rule]) for m in o.matches if m.rule in renumber),
            key=lambda m: m.rule,
        )
        for o in (reference.process(tail), reference.finish())
    ]
    assert got == expected
    assert any(got)


def test_one_compiled_module_whatever_the_pool() -> None:
    """A rule's strings are read from a table of pool ids at run time: pools that number
    them differently (partitions, restored or compacted pools) share one compiled module."""
    rules = _rules(["climb", "either"])
    other = StringPool()
    for text in ("zzz", "B", "a", "A", "C"):
        other.intern(text)
    first = JitRowPatternEngine(rules.sql_programs, StringPool())
    second = JitRowPatternEngine(rules.sql_programs, other)
    for mine, theirs in zip(first.rules, second.rules, strict=True):
        assert mine.module is theirs.module
        assert mine.strs.tolist() != theirs.strs.tolist()


@pytest.mark.parametrize(("before", "after"), [(False, True), (True, False)])
@pytest.mark.parametrize("at", [1, 3])
def test_rules_moving_between_python_and_kernels_keep_their_state(
    before: bool, after: bool, at: int
) -> None:
    """A restore that moves rules to the other side (the engine choice changed, `jit`
    switched) carries their rows, positions, waiting events and watermarks over."""
    rules = _rules(ALL)
    pool, keys = StringPool(), StringPool()
    batch = _events(13, 400, pool, keys, rules)
    expected = _python(rules.sql_programs, batch, pool)
    engine = SqlEngine(rules.sql_programs, pool, jit=before)
    got = []
    for i, (lo, hi) in enumerate(zip([0, *CUTS], [*CUTS, len(batch)], strict=True)):
        if i == at:
            data = engine.snapshot()
            engine = SqlEngine.restore(rules.sql_programs, pool, data, jit=after)
            assert (engine.fast is not None) == after
        out = engine.process(batch.slice(lo, hi))
        got.append((out.matches, out.late))
    out = engine.finish()
    got.append((out.matches, out.late))
    assert got == expected
    assert any(late for _, late in got)


def test_a_new_side_starts_with_the_watermarks_and_waiting_events() -> None:
    """Rules all in Python, then a rule the kernels run is added: its side is new, yet
    late events stay late and waiting events are not lost."""
    before, after = _rules(["like"]), _rules(["like", "climb"])
    pool, keys = StringPool(), StringPool()
    batch = _events(17, 400, pool, keys, before)
    head, tail = batch.slice(0, 200), batch.slice(200, len(batch))
    engine = SqlEngine(before.sql_programs, pool)
    engine.process(head)
    assert engine.fast is None and engine.slow is not None and engine.slow.buffer
    moved = SqlEngine.restore(after.sql_programs, pool, engine.snapshot(), keep=[0, None])
    assert moved.fast is not None and moved.fast.watermark == engine.slow.watermark
    assert len(moved.fast.buffer) == sum(len(w) for w in engine.slow.buffer.values())
    fresh = RowPatternEngine(after.sql_programs, pool)
    fresh.states = {(r, k): s for (r, k), s in engine.slow.states.items()}
    fresh.buffer = {k: list(w) for k, w in engine.slow.buffer.items()}
    fresh.stream_max, fresh.stream_watermark = engine.slow.stream_max, engine.slow.stream_watermark
    fresh.watermark, fresh.arrivals = engine.slow.watermark, engine.slow.arrivals
    expected = [(o.matches, o.late) for o in (fresh.process(tail), fresh.finish())]
    got = [(o.matches, o.late) for o in (moved.process(tail), moved.finish())]
    assert got == expected


def test_processing_time_matches_come_in_event_order() -> None:
    """Processing time: each arrival is decided at once; the matches of both sides come in
    the order of the events that decided them, then rule, as from one Python engine."""
    rules = _rules(ALL)
    config = EngineConfig(processing_time=True)
    pool, keys = StringPool(), StringPool()
    batch = _events(21, 400, pool, keys, rules)
    batch.ts.sort()  # clock-stamped arrivals
    engine = SqlEngine(rules.sql_programs, pool, config)
    assert engine.fast is not None and engine.slow is not None
    python = RowPatternEngine(rules.sql_programs, pool, config)
    seen = set()
    for lo, hi in zip([0, *CUTS], [*CUTS, len(batch)], strict=True):
        part = batch.slice(lo, hi)
        got = engine.process(part).matches
        assert got == python.process(part).matches
        seen |= {m.rule for m in got}
    assert engine.finish().matches == python.finish().matches
    assert seen & set(engine.fast_rules) and seen & set(engine.slow_rules)
