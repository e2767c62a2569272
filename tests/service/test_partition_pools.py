"""A partition's pools are compacted at checkpoints: memory and checkpoints follow live
state, not history, and the alerts are those of a partition that never compacts.

The shipped `auth_unconfirmed` rule reads `auth_id`, unique per authorisation, and cards
come and go: without compaction the string pool, the key pool and every checkpoint grow
with each event. Messages go through the partition's own JSON decoders (whose string
table caches ids and must forget them) and engine, as the service's loop does.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from cep.loader import load_paths
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
