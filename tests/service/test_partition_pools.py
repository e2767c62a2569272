"""A partition's pools and decoders.

Pools are compacted at checkpoints: memory and checkpoints follow live state, not history,
and the alerts are those of a partition that never compacts. The decoders intern every
field a rule reads, including fields only a row-pattern SQL rule reads.

The shipped `auth_unconfirmed` rule reads `auth_id`, unique per authorisation, and cards
come and go: without compaction the string pool, the key pool and every checkpoint grow
with each event. Messages go through the partition's own JSON decoders (whose string
table caches ids and must forget them) and engine, as the service's loop does.
"""

from __future__ import annotations

import struct
from pathlib import Path

import orjson
import pytest

from cep.loader import load_paths, load_text
from nfa.batch import StringPool
from service.decode import ReferenceDecoder
from service.partition import PartitionState, RuleSetIdentity, new_partition
from service.rule_set import engine_kind

LIBRARY = Path(__file__).resolve().parents[2] / "patterns"
INPUTS = [("auths", "auths"), ("confirmations", "confirmations")]


def _partition(engine: str, snapshot: bytes | None = None) -> PartitionState:
    rules = load_paths([LIBRARY / "streams.cep", LIBRARY / "auth_unconfirmed.cep"]).compile()
    programs = [p for p in rules.programs if p.info.enabled]
    kind = engine_kind(engine, rules.schema)
    identity = RuleSetIdentity.of(programs, [])
    return new_partition(0, rules.schema, programs, INPUTS, 65_536, kind, identity, snapshot)


def _messages(batch: int) -> dict[str, list[bytes]]:
    """200 authorisations on new cards, 3 in 4 confirmed, 10 s apart."""
    auths: list[bytes] = []
    confirms: list[bytes] = []
    for i in range(batch * 200, (batch + 1) * 200):
        card, auth, ts = f"card-{i % 900 + batch * 50}", f"auth-{i}", i * 10_000
        auths.append(
            orjson.dumps(
                {
                    "event_id": f"e{i}",
                    "card_id": card,
                    "auth_id": auth,
                    "amount": 250.0 + i % 7,
                    "merchant": f"m{i % 13}",
                    "country": "FR",
                    "ts": ts,
                }
            )
        )
        if i % 4:
            confirms.append(
                orjson.dumps(
                    {
                        "event_id": f"c{i}",
                        "card_id": card,
                        "auth_id": auth,
                        "method": "3ds",
                        "ts": ts + 60_000,
                    }
                )
            )
    return {"auths": auths, "confirmations": confirms}


def _run(
    engine: str, compact_at: int, batches: int
) -> tuple[list[object], PartitionState, list[int]]:
    state = _partition(engine)
    alerts: list[object] = []
    sizes: list[int] = []
    seq = 0
    for b in range(batches):
        for topic, values in _messages(b).items():
            seqs = list(range(seq, seq + len(values)))
            seq += len(values)
            events, rejected = state.decoders[topic].decode(values, seqs, [0] * len(values))
            assert not rejected
            out = state.engine.process(events)
            alerts += [(state.keys.value(m.key), m.fields) for m in out.matches]
        state.compact_pools(compact_at)
        if b % 5 == 4:  # a restart from the checkpoint, with the released ids in it
            state = _partition(engine, state.encode())
        sizes.append(len(state.encode()))
    return alerts, state, sizes


@pytest.mark.parametrize("engine", ["numba", "reference"])
def test_compaction_keeps_pools_and_checkpoints_small_and_alerts_unchanged(engine: str) -> None:
    kept, never, never_sizes = _run(engine, 0, 30)
    compacted, state, sizes = _run(engine, 500, 30)
    # stable sort by card: one watermark's alerts come in key id order across cards
    by_card = sorted(kept, key=lambda a: a[0])  # type: ignore[index]
    assert len(kept) > 1000 and sorted(compacted, key=lambda a: a[0]) == by_card  # type: ignore[index]
    assert never.pool.live > 6000 and state.pool.live < 1500
    assert never.keys.live > 2000 and state.keys.live < 1000
    assert never_sizes[-1] > never_sizes[9] + 40_000  # without compaction: grows with history
    assert sizes[-1] < 1.1 * sizes[9]  # with it: follows live state, which is steady


SQL_RULES = """
streams: |
  stream s key k time ts out_of_order 0s fields { k: string, country: string, x: int, ts: timestamp }
rules:
  - name: dsl
    from: [s]
    pattern: a followed by b
    where: |
      a: x > 3
      b: x > 4
    within: 20s
    emit: |
      to "t" { x: b.x }
  - name: sql_country
    sql: |
      SELECT * FROM s MATCH_RECOGNIZE (
        PARTITION BY k ORDER BY ts
        MEASURES LAST(A.country) AS c
        PATTERN (A B)
        DEFINE A AS country = 'FR', B AS country > A.country
      )
"""


def _matches(engine: object, decoder: ReferenceDecoder) -> list[tuple[int, object]]:
    values = [
        orjson.dumps({"k": "a", "country": c, "x": 1, "ts": i * 1000})
        for i, c in enumerate(["FR", "US"])
    ]
    batch, rejected = decoder.decode(values, [0, 1], [0, 0])
    assert not rejected
    out = engine.process(batch)  # type: ignore[attr-defined]
    later = engine.advance_watermark(0, 10**9)  # type: ignore[attr-defined]
    return [(m.rule, m.fields) for m in [*out.matches, *later.matches]]


def test_sql_only_string_fields_reach_the_sql_rules() -> None:
    """A field only a row-pattern SQL rule reads is decoded too (it was left null)."""
    rules = load_text(SQL_RULES, "review.yaml").compile()
    programs = [p for p in rules.programs if p.info.enabled]
    sql = [p for p in rules.sql_programs if p.info.enabled]
    assert len(sql) == 1  # ordering of strings: kept on the row pattern engine
    kind = engine_kind("numba", rules.schema, sql)

    pool, keys = StringPool(), StringPool()
    every_field = ReferenceDecoder(rules.schema, "s", pool, keys, 65_536, None)
    expected = _matches(kind(programs, pool), every_field)
    assert expected == [(1, (("c", "FR"),))]

    identity = RuleSetIdentity.of(programs, sql)
    state = new_partition(
        0, rules.schema, programs, [("s", "s")], 65_536, kind, identity, sql_programs=sql
    )
    assert _matches(state.engine, state.decoders["s"]) == expected


def test_a_checkpoint_from_before_releases_still_restores() -> None:
    """Older checkpoints name the pools "pool" and "keys" (strings only); newer ones use
    other names, so that older code cannot misread a run of released ids."""
    _, state, _ = _run("numba", 0, 6)
    data = state.encode()
    (length,) = struct.unpack_from(">I", data)
    head = orjson.loads(data[4 : 4 + length])
    assert "pool" not in head and "keys" not in head
    head["pool"], head["keys"] = head.pop("string_pool"), head.pop("key_pool")
    old = orjson.dumps(head)
    restored = _partition("numba", struct.pack(">I", len(old)) + old + data[4 + length :])
    assert restored.pool.state() == state.pool.state()
    assert restored.keys.state() == state.keys.state()
    assert restored.engine.snapshot() == state.engine.snapshot()
