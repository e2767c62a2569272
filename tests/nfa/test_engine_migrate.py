"""Restoring a snapshot into another rule set (hot reload): unchanged rules continue,
changed and new rules start empty, removed rules' state goes; both engines agree."""

from __future__ import annotations

import pytest

from cep.compiler import CompiledRules, compile_rules
from cep.parser import parse_text
from nfa.batch import EventBatch, StringPool, batch_from_records
from nfa.engine import Engine
from nfa.engine_snapshot import SnapshotError
from nfa.migrate import carry_over, dropped_rules, rule_identity
from nfa.program import Program
from nfa.reference import ReferenceEngine
from nfa.results import EngineOutput, Match

STREAM = (
    "stream txns key card_id time ts fields { card_id: string, amount: float, ts: timestamp }\n"
)
CARD_TESTING = """
rule card_testing
  version {version}
  from txns
  pattern small{{3,}} consecutive next big
  where small: amount < 5.00
        big: amount > 500.00
  within 10m skip past last
  emit to "fraud.alerts" {{ tests: count(small) }}
"""
ABSENCE = """
rule absent
  from txns
  pattern big not followed by small
  where big: amount > 500.00
        small: amount < 5
  within {within}
"""
BIG = """
rule big
  from txns
  pattern huge
  where huge: amount > 800
"""
AMOUNTS = [1, 2, 3, 900, 4, 1, 700, 2, 2, 2, 900, 1, 2, 3, 600, 800, 1, 1, 1, 950, 3, 990]


def _rules(text: str) -> CompiledRules:
    return compile_rules(parse_text(STREAM + text, "t.cep"))


def _batch(rules: CompiledRules, pool: StringPool) -> EventBatch:
    rows = [
        ("txns", {"card_id": f"c{i % 2}", "amount": float(a), "ts": 20_000 * i})
        for i, a in enumerate(AMOUNTS)
    ]
    return batch_from_records(rules.schema, rows, pool, StringPool())


def _named(out: EngineOutput, programs: list[Program]) -> list[tuple[str, Match]]:
    found = [(programs[m.rule].info.name, m) for m in [*out.matches, *out.timeouts]]
    return sorted(found, key=lambda item: (item[0], item[1].time, item[1].key))


def _strip(named: list[tuple[str, Match]]) -> list[tuple[str, int, int, tuple[int, ...]]]:
    return [(n, m.key, m.time, tuple(e.seq for e in m.events)) for n, m in named]


@pytest.mark.parametrize("engine_class", [Engine, ReferenceEngine], ids=["numba", "reference"])
def test_unchanged_rules_continue_and_changed_ones_start_empty(engine_class: type) -> None:
    old = _rules(CARD_TESTING.format(version=1) + ABSENCE.format(within="1m"))
    # Reordered, card_testing's version bumped (metadata only), absent changed, big added.
    new = _rules(
        ABSENCE.format(within="2m") + CARD_TESTING.format(version=2) + BIG,
    )
    old_ids = [rule_identity(p) for p in old.programs]
    new_ids = [rule_identity(p) for p in new.programs]
    keep = carry_over(old_ids, new_ids)
    assert keep == [None, 0, None]
    assert dropped_rules(old_ids, keep) == [1]

    pool = StringPool()
    batch = _batch(old, pool)
    cut = len(AMOUNTS) // 2
    before = engine_class(old.programs, pool)
    first = before.process(batch.slice(0, cut))
    after = engine_class.restore(new.programs, pool, before.snapshot(), keep=keep)
    second = after.process(batch.slice(cut, len(AMOUNTS)))
    second.extend(after.finish())

    # card_testing: exactly the matches of an uninterrupted run.
    straight = engine_class(old.programs, pool)
    whole = straight.process(batch)
    whole.extend(straight.finish())
    got = [x for x in _strip(_named(first, old.programs) + _named(second, new.programs))]
    want = [x for x in _strip(_named(whole, old.programs))]
    assert [x for x in got if x[0] == "card_testing"] == [x for x in want if x[0] == "card_testing"]
    assert any(x[0] == "card_testing" for x in want)
    # absent (changed) and big (new): exactly a fresh run over the events after the swap.
    fresh_rules = _rules(ABSENCE.format(within="2m") + BIG)
    fresh = engine_class(fresh_rules.programs, pool)
    tail = fresh.process(batch.slice(cut, len(AMOUNTS)))
    tail.extend(fresh.finish())
    later = [x for x in _strip(_named(second, new.programs)) if x[0] != "card_testing"]
    assert later == _strip(_named(tail, fresh_rules.programs))
    assert {x[0] for x in later} == {"absent", "big"}


def test_both_engines_agree_after_a_migration() -> None:
    old = _rules(CARD_TESTING.format(version=1) + ABSENCE.format(within="1m"))
    new = _rules(BIG + CARD_TESTING.format(version=3))
    keep = carry_over(
        [rule_identity(p) for p in old.programs], [rule_identity(p) for p in new.programs]
    )
    pool = StringPool()
    batch = _batch(old, pool)
    outputs = []
    for engine_class in (Engine, ReferenceEngine):
        engine = engine_class(old.programs, pool)
        engine.process(batch.slice(0, 9))
        moved = engine_class.restore(new.programs, pool, engine.snapshot(), keep=keep)
        out = moved.process(batch.slice(9, len(AMOUNTS)))
        out.extend(moved.finish())
        outputs.append(out)
    assert outputs[0] == outputs[1]
    assert outputs[0].matches


def test_a_rule_cannot_continue_another_rules_state() -> None:
    old = _rules(ABSENCE.format(within="1m"))
    new = _rules(ABSENCE.format(within="2m"))
    pool = StringPool()
    data = Engine(old.programs, pool).snapshot()
    with pytest.raises(SnapshotError, match="cannot continue"):
        Engine.restore(new.programs, pool, data, keep=[0])
    with pytest.raises(SnapshotError, match="different rules"):
        Engine.restore(new.programs, pool, data)


def test_identity_ignores_metadata_but_not_outputs() -> None:
    one = _rules(CARD_TESTING.format(version=1)).programs[0]
    two = _rules(CARD_TESTING.format(version=2)).programs[0]
    assert rule_identity(one) == rule_identity(two)
    other_output = _rules(
        CARD_TESTING.format(version=1).replace("count(small)", "sum(small.amount)")
    ).programs[0]
    assert rule_identity(one) != rule_identity(other_output)
