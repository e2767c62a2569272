"""The product engine's per-rule key tables (`nfa.kernel_keys`): rows only for live keys.

The differential tests use three keys, which rarely collide in a table of 16 slots; here
a model (a dict) checks the hash table under many keys, collisions, removals from the
middle of probe runs, growth and shrinking, and both engines run with hundreds of keys.
"""

from __future__ import annotations

import io
import json
import random

import numpy as np
from test_engine_differential import SEEDS, _run
from test_engine_features import CARD_TESTING, _rules

from nfa.batch import StringPool, batch_from_records
from nfa.engine import Engine
from nfa.engine_snapshot import _HEADER, MAGIC
from nfa.kernel_keys import MIN_KEYS, add_key, fit_keys, grow_keys, home, key_row, release_key
from nfa.kernel_store import (
    DUE_NEVER,
    K_COMP,
    K_DUE,
    K_KEY,
    K_NCOMP,
    K_NRUNS,
    K_RUNS,
    M_LIVE_KEYS,
    new_state,
)
from nfa.reference import EngineConfig, ReferenceEngine


def _check(S: tuple[np.ndarray, ...], model: dict[int, int]) -> None:
    K, M = S[9], S[10]
    assert int(M[M_LIVE_KEYS]) == len(model) == int((K[:, K_KEY] >= 0).sum())
    assert 2 * len(model) <= K.shape[0]
    empty = K[:, K_KEY] < 0
    assert (K[empty, K_RUNS] == -1).all() and (K[empty, K_DUE] == DUE_NEVER).all()
    for key, payload in model.items():
        row = key_row(S, key)
        assert row >= 0 and K[row, K_KEY] == key and K[row, K_COMP] == payload


def test_key_table_against_a_dict() -> None:
    rng = random.Random(4)
    S = new_state((0, 0, 0, 0), (0, 0, 0))
    model: dict[int, int] = {}
    biggest = 0
    for step in range(9000):
        growing = step < 3000
        key = rng.randrange(2000)
        if key in model and (not growing or rng.random() < 0.3):
            row = key_row(S, key)
            S[9][row, K_NRUNS] = 0
            S[9][row, K_NCOMP] = 0
            release_key(S[9], S[10], row)
            del model[key]
        elif key not in model and (growing or rng.random() < 0.1):
            S = grow_keys(S, 1)
            row = add_key(S[9], S[10], np.int64(key))
            S[9][row, K_COMP] = key * 3  # a payload that must move with the row
            S[9][row, K_NRUNS] = 1
            model[key] = key * 3
        if step % 97 == 0:
            S = fit_keys(S)
            _check(S, model)
        biggest = max(biggest, S[9].shape[0])
        assert key_row(S, 5000 + step) == -1
    S = fit_keys(fit_keys(S))  # the peak since the last call, then the live keys
    _check(S, model)
    assert biggest >= 2048  # grew past a thousand keys, then shrank as they left
    assert S[9].shape[0] < biggest
    assert S[9].shape[0] == MIN_KEYS or 8 * len(model) >= S[9].shape[0]


def test_key_table_removal_across_the_end() -> None:
    # Keys whose probe run wraps from the last row to the first: removing the head of the
    # run must move the wrapped keys back, or they can no longer be found.
    S = new_state((0, 0, 0, 0), (0, 0, 0))
    K, M = S[9], S[10]
    last = [k for k in range(10_000) if home(K, np.int64(k)) == K.shape[0] - 1][:2]
    first = next(k for k in range(10_000) if home(K, np.int64(k)) == 0)
    for key in [*last, first]:
        K[add_key(K, M, np.int64(key)), K_NRUNS] = 1
    assert K[[-1, 0, 1], K_KEY].tolist() == [*last, first]
    row = key_row(S, last[0])
    K[row, K_NRUNS] = 0
    release_key(K, M, row)
    assert K[[-1, 0, 1], K_KEY].tolist() == [last[1], first, -1]
    assert key_row(S, last[0]) == -1 and key_row(S, last[1]) >= 0 and key_row(S, first) >= 0


def test_many_keys_both_engines() -> None:
    for seed in range(SEEDS):
        rng = random.Random(seed)
        events = [
            (
                rng.randrange(300),
                rng.choice([None, 0, 1, 2, 3, 4]),
                rng.choice([None, 0.5, 1.0, 2.0, 3.0]),
                rng.randrange(-2500, 1500),
            )
            for _ in range(1500)
        ]
        cuts = [rng.randrange(1500) for _ in range(4)]
        for config in (EngineConfig(), EngineConfig(max_keys=40, max_runs_per_rule=60)):
            _run(seed, events, cuts, 2, True, config, copies=2)


def test_key_rows_follow_live_keys() -> None:
    # 5,000 keys each start a partial match, which all expire: the table grows, then
    # gives its rows back (`fit_keys` shrinks it once a whole call held few keys).
    rules = _rules(CARD_TESTING)
    pool, keys = StringPool(), StringPool()
    rows = [("txns", {"card_id": f"c{i}", "amount": 1.0, "ts": i}) for i in range(5000)]
    engine = Engine(rules.programs, pool)
    reference = ReferenceEngine(rules.programs, pool)
    batch = batch_from_records(rules.schema, rows, pool, keys)
    engine.process(batch)
    reference.process(batch)
    assert engine.states[0][9].shape[0] >= 2 * 5000
    late = [("txns", {"card_id": "c0", "amount": 50.0, "ts": 3_600_000})]
    batch = batch_from_records(rules.schema, late, pool, keys)
    assert engine.process(batch) == reference.process(batch)
    assert engine.live_partial_matches() == 0
    for ts in (3_600_001, 3_600_002):  # the table shrinks after a whole call under its size
        later = [("txns", {"card_id": "c1", "amount": 50.0, "ts": ts})]
        engine.process(batch_from_records(rules.schema, later, pool, keys))
    assert engine.states[0][9].shape[0] == MIN_KEYS


def _as_format_2(data: bytes) -> bytes:
    """A format-3 snapshot rewritten as format 2 wrote it: `K` a row per key id (five
    columns), `M` without the live key count."""
    _, _, length = _HEADER.unpack_from(data)
    meta = json.loads(data[_HEADER.size : _HEADER.size + length])
    with np.load(io.BytesIO(data[_HEADER.size + length :])) as archive:
        arrays = {name: archive[name] for name in archive.files}
    for r in range(len(meta["state_arrays"])):
        K = arrays[f"rule{r}.9"]
        used = K[:, K_KEY] >= 0
        dense = np.zeros((int(K[used, K_KEY].max(initial=0)) + 7, K_KEY), np.int32)
        dense[:] = (-1, 0, -1, 0, DUE_NEVER)
        dense[K[used, K_KEY]] = K[used, :K_KEY]
        arrays[f"rule{r}.9"] = dense
        arrays[f"rule{r}.10"] = arrays[f"rule{r}.10"][:M_LIVE_KEYS]
    body = io.BytesIO()
    np.savez(body, **arrays)
    text = json.dumps(meta).encode()
    return _HEADER.pack(MAGIC, 2, len(text)) + text + body.getvalue()


def test_format_2_snapshots_restore_into_key_tables() -> None:
    rules = _rules(CARD_TESTING)
    pool, keys = StringPool(), StringPool()
    rng = random.Random(2)
    amounts = [1.0, 2.0, 50.0, 600.0]
    rows = [
        ("txns", {"card_id": f"c{rng.randrange(60)}", "amount": rng.choice(amounts), "ts": i})
        for i in range(600)
    ]
    batch = batch_from_records(rules.schema, rows, pool, keys)
    straight = Engine(rules.programs, pool)
    want = straight.process(batch)
    want.extend(straight.finish())
    first = Engine(rules.programs, pool)
    got = first.process(batch.slice(0, 300))
    old = _as_format_2(first.snapshot())
    assert _HEADER.unpack_from(old)[1] == 2
    second = Engine.restore(rules.programs, pool, old)
    assert second.live_partial_matches() == first.live_partial_matches() > 0
    got.extend(second.process(batch.slice(300, len(rows))))
    got.extend(second.finish())
    assert got == want and len(want.matches) > 0
    assert second.counters == straight.counters
