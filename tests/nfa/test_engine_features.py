"""Direct tests of the Numba engine on named features, each checked against the reference."""

from __future__ import annotations

import pytest

from cep.compiler import CompiledRules, compile_rules
from cep.parser import parse_text
from nfa.batch import EventBatch, StringPool, batch_from_records
from nfa.engine import Engine
from nfa.reference import EngineConfig, ReferenceEngine
from nfa.results import EngineOutput

STREAM = (
    "stream txns key card_id time ts out_of_order {ooo} "
    "fields { card_id: string, amount: float, ts: timestamp }\n"
)
CARD_TESTING = """
rule card_testing
  from txns
  pattern small{3,} consecutive next big
  where small: amount < 5.00
        big: amount > 500.00
  within 10m skip past last
  emit to "fraud.alerts" { tests: count(small), total: sum(small.amount) }
"""
ABSENCE = """
rule absent
  from txns
  pattern big not followed by small
  where big: amount > 500.00
        small: amount < 5
  within 1m
"""


def _rules(text: str, ooo: str = "0s") -> CompiledRules:
    return compile_rules(parse_text(STREAM.replace("{ooo}", ooo) + text, "t.cep"))


def _both(
    rules: CompiledRules,
    records: list[tuple[str, float, int]],
    config: EngineConfig | None = None,
) -> tuple[EngineOutput, EngineOutput, Engine, ReferenceEngine]:
    pool, keys = StringPool(), StringPool()
    rows = [("txns", {"card_id": c, "amount": a, "ts": t}) for c, a, t in records]
    batch = batch_from_records(rules.schema, rows, pool, keys)
    engine = Engine(rules.programs, pool, config)
    reference = ReferenceEngine(rules.programs, pool, config)
    got, want = engine.process(batch), reference.process(batch)
    got.extend(engine.finish())
    want.extend(reference.finish())
    return got, want, engine, reference


def test_card_testing_strict() -> None:
    amounts = [1, 2, 3, 4, 600, 1, 700, 2, 2, 2, 900, 1, 2, 50, 3, 600]
    records = [("c1", float(a), 1000 * i) for i, a in enumerate(amounts)]
    records += [("c2", float(a), 1000 * i + 20_000) for i, a in enumerate([1, 1, 1, 999])]
    got, want, _, _ = _both(_rules(CARD_TESTING), records)
    assert got == want
    assert [len(m.events) for m in got.matches] == [5, 4, 4]
    assert dict(got.matches[0].fields) == {"tests": 4, "total": 10.0}


def test_absence_completed_by_watermark_without_further_events() -> None:
    got, want, _, _ = _both(_rules(ABSENCE), [("c1", 900.0, 0), ("c1", 1.0, 10_000)])
    assert got == want
    assert got.matches == []
    got, want, _, _ = _both(_rules(ABSENCE), [("c1", 900.0, 0)])
    assert got == want
    assert [(m.time, len(m.events)) for m in got.matches] == [(60_000, 1)]


def test_absence_completed_by_watermark_advance() -> None:
    rules = _rules(ABSENCE)
    pool, keys = StringPool(), StringPool()
    batch = batch_from_records(
        rules.schema, [("txns", {"card_id": "c1", "amount": 900.0, "ts": 0})], pool, keys
    )
    engine = Engine(rules.programs, pool)
    assert engine.process(batch).matches == []
    assert engine.advance_watermark(0, 59_999).matches == []
    out = engine.advance_watermark(0, 60_000)
    assert [m.time for m in out.matches] == [60_000]


def test_late_events() -> None:
    records = [("c1", 1.0, 5000), ("c1", 2.0, 1000), ("c2", 3.0, 4000), ("c1", 4.0, 6000)]
    got, want, engine, reference = _both(_rules(CARD_TESTING, "1s"), records)
    assert got == want
    assert [(e.seq, e.ts, e.watermark) for e in got.late] == [(1, 1000, 4000), (2, 4000, 4000)]
    assert engine.counters == reference.counters
    assert engine.counters.events_late == 2


@pytest.mark.parametrize("engine_class", [Engine, ReferenceEngine])
def test_an_idleness_advance_is_not_undone_by_a_later_event(engine_class: type) -> None:
    """The watermark never goes back: after an advance to 60 s, an event at 50 s is late
    even though the stream's largest time (55 s) minus out-of-orderness (10 s) is lower.
    (The row pattern engine: `tests/sql/test_stream_extensions.py`.)"""
    rules = _rules(CARD_TESTING, "10s")
    pool, keys = StringPool(), StringPool()

    def event(seq: int, ts: int) -> EventBatch:
        row = ("txns", {"card_id": "c1", "amount": 1.0, "ts": ts})
        return batch_from_records(rules.schema, [row], pool, keys, seq)

    engine = engine_class(rules.programs, pool)
    assert engine.process(event(0, 55_000)).late == []
    engine.advance_watermark(0, 60_000)
    late = engine.process(event(1, 50_000)).late
    assert [(e.seq, e.watermark) for e in late] == [(1, 60_000)]
    assert engine.process(event(2, 61_000)).late == []
    assert [(e.seq, e.watermark) for e in engine.process(event(3, 58_000)).late] == [(3, 60_000)]


def test_snapshot_restore_continues_exactly() -> None:
    rules = _rules(CARD_TESTING + ABSENCE, "2s")
    pool, keys = StringPool(), StringPool()
    amounts = [1, 2, 3, 900, 4, 1, 700, 2, 2, 2, 900, 1, 2, 3, 600, 800]
    rows = [
        ("txns", {"card_id": f"c{i % 2}", "amount": float(a), "ts": 1000 * i - 500 * (i % 3)})
        for i, a in enumerate(amounts)
    ]
    batch = batch_from_records(rules.schema, rows, pool, keys)
    straight = Engine(rules.programs, pool)
    want = straight.process(batch)
    want.extend(straight.finish())
    for cut in range(len(rows) + 1):
        first = Engine(rules.programs, pool)
        got = first.process(batch.slice(0, cut))
        data = first.snapshot()
        second = Engine.restore(rules.programs, pool, data)
        got.extend(second.process(batch.slice(cut, len(rows))))
        got.extend(second.finish())
        assert got == want, cut
        assert second.counters == straight.counters


def test_max_runs_per_key_drops_oldest_and_counts() -> None:
    text = """
rule many
  from txns
  pattern a followed by any b
  where a: amount < 5
        b: amount > 500
  within 1h
"""
    records = [("c1", 1.0, i) for i in range(10)] + [("c1", 600.0, 100)]
    config = EngineConfig(max_runs_per_key=3)
    got, want, engine, reference = _both(_rules(text), records, config)
    assert got == want
    assert engine.counters.partial_matches_dropped == reference.counters.partial_matches_dropped
    assert engine.counters.partial_matches_dropped > 0
    assert len(got.matches) == 3


def test_max_runs_per_rule_drops_the_rules_oldest_over_all_keys() -> None:
    # After the first call rule `any_small` has 4 partial matches (c1 twice, c2, c3): the
    # 2 oldest (c1 at 0, c2 at 1) go. Rule `tiny` has 2 and keeps them: the bound is per rule.
    text = """
rule any_small
  from txns
  pattern a followed by b
  where a: amount < 5
        b: amount > 500
  within 1h
rule tiny
  from txns
  pattern a followed by b
  where a: amount < 2
        b: amount > 500
  within 1h
"""
    rules = _rules(text)
    first = [("c1", 1.0, 0), ("c2", 3.0, 1), ("c1", 1.0, 2), ("c3", 3.0, 3)]
    second = [("c1", 600.0, 10), ("c2", 600.0, 11), ("c3", 600.0, 12)]
    pool, keys = StringPool(), StringPool()
    config = EngineConfig(max_runs_per_rule=2)
    engine = Engine(rules.programs, pool, config)
    reference = ReferenceEngine(rules.programs, pool, config)
    got, want = EngineOutput(), EngineOutput()
    for part in (first, second):
        rows = [("txns", {"card_id": c, "amount": a, "ts": t}) for c, a, t in part]
        batch = batch_from_records(rules.schema, rows, pool, keys)
        got.extend(engine.process(batch))
        want.extend(reference.process(batch))
    got.extend(engine.finish())
    want.extend(reference.finish())
    assert got == want
    assert engine.counters == reference.counters
    assert engine.counters.partial_matches_dropped == 2
    c1, c3 = keys.lookup("c1"), keys.lookup("c3")
    starts = sorted((m.rule, m.key, m.start) for m in got.matches)
    assert starts == [(0, c1, 2), (0, c3, 3), (1, c1, 0), (1, c1, 2)]


def test_max_runs_per_rule_releases_a_match_held_back_by_a_dropped_run() -> None:
    # c1's match from a@1 waits (skip past last) behind the earlier partial match a@0.
    # The bound drops a@0 (the rule's oldest) after the first call, so the next watermark
    # advance, here from another key's event, emits the held-back match.
    text = """
rule held
  from txns
  pattern a followed by b
  where a: amount < 10
        b: amount > 500 and a.amount > 2
  within 1h skip past last
"""
    rules = _rules(text)
    calls = [
        [("c1", 1.0, 0), ("c1", 3.0, 1), ("c1", 600.0, 2), ("c1", 1.0, 3)],
        [("c2", 50.0, 4)],
    ]
    pool, keys = StringPool(), StringPool()
    config = EngineConfig(max_runs_per_rule=1)
    engine = Engine(rules.programs, pool, config)
    reference = ReferenceEngine(rules.programs, pool, config)
    outputs = []
    for part in calls:
        rows = [("txns", {"card_id": c, "amount": a, "ts": t}) for c, a, t in part]
        batch = batch_from_records(rules.schema, rows, pool, keys)
        got, want = engine.process(batch), reference.process(batch)
        assert got == want
        outputs.append(got)
    assert engine.counters == reference.counters
    assert engine.counters.partial_matches_dropped == 1
    assert outputs[0].matches == []
    assert [(m.start, m.end) for m in outputs[1].matches] == [(1, 2)]


def test_max_keys_evicts_least_recently_active_and_counts() -> None:
    # Bounds apply after each call: c1 and c2 hold partial matches when c3 starts one, so
    # c1 (least recently active) is evicted and its later big amount matches nothing.
    rules = _rules(CARD_TESTING)
    records = [("c1", 1.0, 0), ("c1", 1.0, 1), ("c2", 1.0, 2), ("c3", 1.0, 3)]
    records += [("c1", 1.0, 4), ("c1", 600.0, 5)]
    pool, keys = StringPool(), StringPool()
    rows = [("txns", {"card_id": c, "amount": a, "ts": t}) for c, a, t in records]
    batch = batch_from_records(rules.schema, rows, pool, keys)
    config = EngineConfig(max_keys=2)
    engine = Engine(rules.programs, pool, config)
    reference = ReferenceEngine(rules.programs, pool, config)
    got, want = EngineOutput(), EngineOutput()
    for i in range(len(batch)):
        got.extend(engine.process(batch.slice(i, i + 1)))
        want.extend(reference.process(batch.slice(i, i + 1)))
    got.extend(engine.finish())
    want.extend(reference.finish())
    assert got == want
    assert engine.counters == reference.counters
    assert engine.counters.keys_evicted > 0
    assert engine.counters.partial_matches_dropped > 0


def test_max_keys_does_not_count_keys_whose_runs_expired() -> None:
    # c1's partial match expires when c2's first event moves the watermark: c1 is idle,
    # so c2 alone holds state and nothing is evicted (the reference once counted c1).
    rules = _rules(CARD_TESTING)
    records = [("c1", 1.0, 0), ("c2", 1.0, 700_000), ("c2", 1.0, 700_001)]
    pool, keys = StringPool(), StringPool()
    rows = [("txns", {"card_id": c, "amount": a, "ts": t}) for c, a, t in records]
    batch = batch_from_records(rules.schema, rows, pool, keys)
    config = EngineConfig(max_keys=1)
    engine = Engine(rules.programs, pool, config)
    reference = ReferenceEngine(rules.programs, pool, config)
    for i in range(len(batch)):
        assert engine.process(batch.slice(i, i + 1)) == reference.process(batch.slice(i, i + 1))
    assert engine.counters == reference.counters
    assert reference.counters.keys_evicted == 0


def test_max_buffered_events_drops_oldest_arrivals() -> None:
    records = [("c1", 1.0, t) for t in (5_000, 1_000, 2_000, 3_000)]
    config = EngineConfig(max_buffered_events=2)
    got, want, engine, reference = _both(_rules(CARD_TESTING, "10s"), records, config)
    assert got == want
    assert engine.counters == reference.counters
    assert engine.counters.events_dropped == 2
