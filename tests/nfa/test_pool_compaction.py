"""Releasing pool ids no state refers to changes no output (`nfa.string_refs`).

Rules read strings unique per event (tags), compare them across events (an aggregate
slot), output them (stored event columns), count them distinctly, map them through string
functions and lookups that intern results, and keys come and go. The same stream runs on
an engine whose pools are never released and on one whose pools are released after random
batches (and snapshotted and restored with the released ids in between); the outputs, with
strings and keys as text, must be equal, and the released pools must stay small.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cep.compiler import CompiledRules, compile_rules
from cep.loader import load_text
from cep.parser import parse_text
from nfa.batch import StringPool, batch_from_records
from nfa.engine import Engine
from nfa.mixed import MixedEngine
from nfa.reference import ReferenceEngine
from nfa.results import EngineOutput
from nfa.string_refs import referenced_ids
from nfa.string_tables import StringTables

RULES = """
const REGION = {"FR": "EU", "US": "NA", "fr": "eu"}
stream s key k time ts out_of_order 2s fields { k: string, tag: string, country: string, x: int, ts: timestamp }
rule same_tag
  from s
  pattern a followed by b
  where a: lower(country) == "fr"
        b: tag == a.tag and x > 0
  within 1m
  emit to "t" { tag: a.tag, shout: upper(b.country), region: REGION[b.country] }
rule distinct_tags
  from s
  pattern c{2,} consecutive
  where c: x > 2 and (count(c) == 0 or tag != c.tag)
  within 30s skip past last
  emit to "t" { tags: count_distinct(c.tag), first: first(c.tag), last: c.tag }
rule unanswered
  from s
  pattern a not followed by b
  where a: x > 3 and startswith(tag, "t")
        b: tag == a.tag
  within 20s
  emit to "t" { tag: a.tag, key: a.k }
rule same_country
  from s
  pattern d followed by e
  where d: x == 1
        e: country == d.country and x >= 1
  within 30s
  emit to "t" { x: e.x }
"""


def _rules() -> CompiledRules:
    return compile_rules(parse_text(RULES, "pools.cep"))


def _records(seed: int, n: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    out: list[dict[str, object]] = []
    for i in range(n):
        key = f"k{rng.randint(0, 20)}" if rng.random() < 0.8 else f"once{i}"
        country = rng.choice(["FR", "fr", "US", "DE", f"X{i}", f"Fr{i}"])
        out.append(
            {
                "k": key,
                "tag": f"t{i - rng.randint(0, 6)}" if rng.random() < 0.9 else f"u{i}",
                "country": country,
                "x": rng.randint(0, 6),
                "ts": i * 400 - (rng.randint(0, 1500) if rng.random() < 0.98 else 6000),
            }
        )
    return out


def _text(out: EngineOutput, keys: StringPool) -> list[tuple[object, ...]]:
    """Outputs with key ids as their strings (fields are strings already), ordered by key
    (stable: each key's own order kept). Across keys, outputs of one watermark advance come
    in key id order, and released ids are given to other keys: that order may change."""
    rows: list[tuple[object, ...]] = []
    for m in [*out.matches, *out.timeouts]:
        seqs = tuple(e.seq for e in m.events)
        rows.append((m.rule, keys.value(m.key), seqs, m.timed_out, m.fields))
    rows += [("late", keys.value(e.key), e.seq) for e in out.late]
    return sorted(rows, key=lambda row: str(row[1]))


class _Plain:
    """One of the DSL engines over RULES."""

    def __init__(self, engine_class: Any):
        self.engine_class = engine_class
        self.compiled = _rules()

    def rules(self) -> CompiledRules:
        return self.compiled

    def new(self, pool: StringPool) -> Any:
        return self.engine_class(self.compiled.programs, pool)

    def restore(self, pool: StringPool, data: bytes) -> Any:
        return self.engine_class.restore(self.compiled.programs, pool, data)


def _run(
    kind: Any, records: list[dict[str, object]], cuts: list[int], release: set[int]
) -> tuple[list[tuple[object, ...]], StringPool, StringPool]:
    rules = kind.rules()
    pool, keys = StringPool(), StringPool()
    engine = kind.new(pool)
    seen: list[tuple[object, ...]] = []
    for b, (lo, hi) in enumerate(zip([0, *cuts], [*cuts, len(records)], strict=True)):
        rows = [("s", r) for r in records[lo:hi]]
        seen += _text(engine.process(batch_from_records(rules.schema, rows, pool, keys, lo)), keys)
        if b in release:
            found = referenced_ids(engine)
            assert found is not None
            strings, key_ids = found
            pool.release(strings)
            keys.release(key_ids)
            if b % 2:  # and continue from a snapshot, as after a restart
                data = engine.snapshot()
                pool, keys = (
                    StringPool.from_state(pool.state()),
                    StringPool.from_state(keys.state()),
                )
                engine = kind.restore(pool, data)
    seen += _text(engine.finish(), keys)
    return seen, pool, keys


@pytest.mark.parametrize("engine_class", [Engine, ReferenceEngine])
def test_released_pools_change_no_output_and_stay_small(engine_class: type) -> None:
    records = _records(3, 3000)
    cuts = list(range(100, 3000, 100))
    kind = _Plain(engine_class)
    kept, full, full_keys = _run(kind, records, cuts, set())
    compacted, pool, keys = _run(kind, records, cuts, set(range(len(cuts))))
    assert len(kept) > 100  # every rule matched: the comparison means something
    assert {row[0] for row in kept} >= {0, 1, 2, 3, "late"}
    assert compacted == kept
    assert full.live > 4000 and pool.live < full.live // 4
    assert full_keys.live > 500 and keys.live < 100


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), data=st.data())
def test_release_at_random_points_equals_never_releasing(seed: int, data: st.DataObject) -> None:
    n = 600
    records = _records(seed, n)
    cuts = sorted(data.draw(st.sets(st.integers(1, n - 1), max_size=12)))
    release = data.draw(st.sets(st.integers(0, len(cuts)), max_size=len(cuts) + 1))
    kind = _Plain(Engine)
    assert _run(kind, records, cuts, release)[0] == _run(kind, records, cuts, set())[0]


MIXED = """
streams: |
  stream s key k time ts out_of_order 2s fields { k: string, tag: string, country: string, x: int, ts: timestamp }
rules:
  - name: unanswered
    from: [s]
    pattern: a not followed by b
    where: |
      a: x > 3
      b: tag == a.tag
    within: 20s
    emit: |
      to "t" { tag: a.tag }
  - name: sql_tags
    sql: |
      SELECT * FROM s MATCH_RECOGNIZE (
        PARTITION BY k ORDER BY ts
        MEASURES FIRST(A.tag) AS first_tag, LAST(B.tag) AS last_tag, LAST(B.country) AS c
        PATTERN (A B+ C) WITHIN INTERVAL '30' SECOND
        DEFINE A AS x > 3, B AS tag <> A.tag, C AS x = 0
      )
"""


class _Mixed:
    """MixedEngine over MIXED's DSL and SQL rules, with the `Engine` API used by `_run`."""

    compiled = load_text(MIXED, "mixed.yaml").compile(sql_on_nfa=False)

    @classmethod
    def rules(cls) -> CompiledRules:
        return cls.compiled

    @classmethod
    def new(cls, pool: StringPool) -> MixedEngine:
        return MixedEngine.create(cls.compiled.programs, cls.compiled.sql_programs, pool, Engine)

    @classmethod
    def restore(cls, pool: StringPool, data: bytes) -> MixedEngine:
        c = cls.compiled
        return MixedEngine.restore(c.programs, c.sql_programs, pool, data, Engine.restore)


def test_mixed_engine_releases_the_ids_of_both_parts() -> None:
    records = _records(11, 1500)
    cuts = list(range(100, 1500, 100))
    kept, full, _ = _run(_Mixed, records, cuts, set())
    compacted, pool, _ = _run(_Mixed, records, cuts, set(range(len(cuts))))
    assert {row[0] for row in kept} >= {0, 1}
    assert compacted == kept
    assert pool.live < full.live // 2


def test_pool_release_keeps_ids_stable_and_reuses_the_smallest() -> None:
    pool = StringPool()
    ids = [pool.intern(f"s{i}") for i in range(6)]
    pinned = pool.intern("constant")
    pool.pin(pinned)
    generation = pool.generation
    assert pool.release(np.array([ids[1], ids[4]], np.int64)) == 4
    assert pool.generation == generation + 1
    assert pool.value(ids[1]) == "s1" and pool.value(pinned) == "constant"
    assert pool.lookup("s0") is None and pool.get(ids[0]) is None
    with pytest.raises(KeyError):
        pool.value(ids[0])
    assert pool.intern("new") == ids[0] and pool.recycled == [ids[0]]
    assert pool.intern("s1") == ids[1]
    assert pool.state() == ["", "new", "s1", -2, "s4", -1, "constant"]  # runs of holes
    restored = StringPool.from_state(pool.state())
    assert restored.state() == pool.state() and restored.live == pool.live
    assert restored.intern("again") == ids[2]
    assert StringPool.from_state(["", "a", "b"]).intern("b") == 2  # before releases existed


def test_released_ids_at_the_end_shrink_the_pool() -> None:
    pool = StringPool()
    ids = [pool.intern(f"s{i}") for i in range(1000)]
    assert pool.release(np.array(ids[:10], np.int64)) == 990
    assert len(pool) == 11 and pool.live == 11
    assert pool.intern("next") == 11 and len(pool) == 12


def test_string_tables_follow_recycled_ids() -> None:
    pool = StringPool()
    tables = StringTables(pool)
    row = tables.row(("fn", "upper", ()))
    first = pool.intern("abc")
    assert pool.value(int(tables.arrays()[0][row, first])) == "ABC"
    pool.release(np.zeros(0, np.int64))
    assert pool.intern("xyz") == first  # the same id, another string
    assert pool.value(int(tables.arrays()[0][row, first])) == "XYZ"
    other = pool.intern("q")
    pool.release(np.array([first, other], np.int64))
    reused = pool.intern("w")
    assert pool.value(int(tables.arrays()[0][row, reused])) == "W"
    assert pool.value(int(tables.arrays()[0][row, first])) == "XYZ"
