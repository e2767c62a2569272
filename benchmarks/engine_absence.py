"""Workload: the shipped absence rule (authorisation, no confirmation within 5 minutes).

Run: `python -m benchmarks.engine_absence [--events N] [--cards N] [--unconfirmed N]
[--quiet N] [--batch N] [--prefix N] [--all-streams]`.

The rule is `patterns/auth_unconfirmed.cep` (an authorisation of at least 200.00 not followed
by a confirmation naming its auth_id within 5 minutes; the alert is due when the window
passes, even if the card sees nothing else) compiled against `patterns/streams.cep`.
Events: ~3 million over two hours in time order on 100,000 cards: authorisations (log-normal
amounts, ~14% of at least 200), 96% confirmed within 2-60 s, 1% late (5-10 min), 3% never;
plus planted unconfirmed large authorisations on cards with further traffic (`--unconfirmed`)
and on cards that go quiet for good after them in the last 9 minutes (`--quiet`). After
the input, every stream's watermark is advanced by 6 minutes (what the daemon's idleness
does when input stops), then `finish`.

Prints one JSON document (`benchmarks.common.report`): events/s (process, idle advance and
finish timed, kernels loaded before), matches by where they fired (a watermark advance
with the card quiet, i.e. a timer, or the card's own next event; during the input, on the
idle advance, at finish), planted ones found, event-time lag from due time to emission,
peak live partial matches, state bytes per peak partial match, peak RSS, and the product
against the reference engine on a prefix (same outputs, events/s of each).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from benchmarks.common import peak_rss_mb, report
from benchmarks.multistream import (
    EPOCH_MS,
    MINUTE_MS,
    Columns,
    Run,
    build_and_memory,
    compare_prefix,
    interned,
    load_rule,
    rss_mb,
    run_product,
    time_order,
)
from cep.compiler import CompiledRules
from nfa.batch import StringPool
from nfa.engine import Engine
from nfa.string_refs import referenced_ids

SPAN_MS = 120 * MINUTE_MS
WINDOW_MS = 5 * MINUTE_MS
IDLE_MS = 6 * MINUTE_MS
MERCHANTS = 500
SOURCES = {
    "auths.card_id": "card",
    "auths.auth_id": "auth",
    "auths.amount": "amount",
    "auths.merchant": "merchant",
    "auths.ts": "ts",
    "confirmations.card_id": "card",
    "confirmations.auth_id": "auth",
    "confirmations.ts": "ts",
}
Fields = dict[str, npt.NDArray[Any]]


def _auths(card: npt.NDArray[np.int64], ts: npt.NDArray[np.int64], amount: Any) -> Fields:
    n = len(card)
    return {
        "card_ix": card,
        "ts": ts,
        "amount": np.broadcast_to(np.asarray(amount, np.float64), (n,)).copy(),
        "is_auth": np.ones(n, np.bool_),
        "planted": np.zeros(n, np.int8),  # 1: unconfirmed on a busy card, 2: card goes quiet
        "auth_no": np.full(n, -1, np.int64),
    }


def make_columns(
    rules: CompiledRules,
    events: int,
    cards: int,
    unconfirmed: int,
    quiet: int,
    pool: StringPool,
    seed: int,
) -> Columns:
    rng = np.random.default_rng(seed)
    n = max(int((events - unconfirmed - quiet) / 1.97), 1)  # ~97% get a confirmation
    bg = _auths(
        rng.integers(0, cards, n),
        rng.integers(0, SPAN_MS, n),
        np.round(rng.lognormal(np.log(60), 1.1, n), 2),
    )
    fate = rng.random(n)
    delay = np.where(
        fate < 0.96, rng.integers(2_000, 60_000, n), rng.integers(WINDOW_MS, 2 * WINDOW_MS, n)
    )
    confirmed = np.flatnonzero(fate < 0.97)
    conf: Fields = {
        "card_ix": bg["card_ix"][confirmed],
        "ts": bg["ts"][confirmed] + delay[confirmed],
        "amount": np.full(len(confirmed), np.nan),
        "is_auth": np.zeros(len(confirmed), np.bool_),
        "planted": np.zeros(len(confirmed), np.int8),
        "auth_no": confirmed.astype(np.int64),
    }
    bg["auth_no"] = np.arange(n, dtype=np.int64)
    quiet_cards = rng.choice(cards, min(quiet, cards), replace=False)
    busy = rng.integers(0, cards, unconfirmed)
    busy = busy[~np.isin(busy, quiet_cards)]
    planted_busy = _auths(busy, rng.integers(0, SPAN_MS - 10 * MINUTE_MS, len(busy)), 750.0)
    planted_busy["planted"][:] = 1
    planted_quiet = _auths(
        quiet_cards, rng.integers(SPAN_MS - 9 * MINUTE_MS, SPAN_MS, len(quiet_cards)), 950.0
    )
    planted_quiet["planted"][:] = 2
    parts = [bg, conf, planted_busy, planted_quiet]
    for part in parts[:2]:  # quiet cards: no traffic at all in the last 10 minutes
        quiet_now = np.isin(part["card_ix"], quiet_cards) & (part["ts"] >= SPAN_MS - 10 * MINUTE_MS)
        keep = ~quiet_now & (part["ts"] < SPAN_MS)  # both streams end together
        for k in part:
            part[k] = part[k][keep]
    f = time_order(parts)
    f["ts"] += EPOCH_MS
    m = len(f["ts"])
    planted_ids = np.flatnonzero(f["auth_no"] < 0)
    f["auth_no"][planted_ids] = n + np.arange(len(planted_ids))
    names = [f"auth{i:08d}" for i in range(n + len(planted_ids))]
    f["auth"] = interned(pool, names)[f["auth_no"]]  # read by the rule: interned, as decoded
    f["card"] = interned(pool, [f"card{c}" for c in range(cards)])[f["card_ix"]]
    merchant = interned(pool, [f"merchant{i}" for i in range(MERCHANTS)])
    f["merchant"] = np.where(f["is_auth"], merchant[rng.integers(0, MERCHANTS, m)], -1)
    stream = np.where(
        f["is_auth"], rules.schema.stream_index("auths"), rules.schema.stream_index("confirmations")
    ).astype(np.int8)
    values = {k: f[k] for k in ("auth", "card", "merchant", "amount", "ts", "planted")}
    return Columns(rules.programs, stream, f["card_ix"] + 1, f["ts"], values, SOURCES)


def fired_by(run: Run, columns: Columns) -> dict[str, int]:
    """Matches by phase, and whether a timer fired them: the card had no event between the
    due time and the watermark of the call that returned the match, so only a watermark
    advance (the engine's due-key visit) can have; otherwise the card's next event did."""
    order = np.lexsort((columns.ts, columns.key))
    combined = columns.key[order] * (1 << 42) + (columns.ts[order] - EPOCH_MS)
    counts = {"fired_by_timer": 0, "fired_by_card_event": 0}
    for phase in ("process", "idle", "finish"):
        counts[f"fired_during_{phase}"] = sum(1 for e in run.emitted if e.phase == phase)
    if not run.emitted:
        return counts
    key = np.array([e.match.key for e in run.emitted], np.int64)
    due = np.array([e.match.time for e in run.emitted], np.int64) - EPOCH_MS
    watermark = np.array([min(e.watermark, 2**41) for e in run.emitted], np.int64) - EPOCH_MS
    at = np.searchsorted(combined, key * (1 << 42) + due)
    nxt = combined[np.minimum(at, len(combined) - 1)]
    by_event = (at < len(combined)) & (nxt >> 42 == key) & ((nxt & ((1 << 42) - 1)) <= watermark)
    counts["fired_by_card_event"] = int(by_event.sum())
    counts["fired_by_timer"] = int((~by_event).sum())
    return counts


def pool_compaction(
    rules: CompiledRules, pool: StringPool, columns: Columns, batch: int
) -> dict[str, Any]:
    """Half the events through a new engine, then one compaction of the string pool as a
    checkpoint does it (`service.partition.PartitionState.compact_pools`): its time, and
    the pool's entries and JSON bytes in the checkpoint before and after. Every auth id
    was interned up front, so the pool holds them all: as a service's pool would after
    the whole stream without compaction."""
    engine = Engine(rules.programs, pool)
    half = len(columns) // 2
    for lo in range(0, half, batch):
        engine.process(columns.batch(lo, min(lo + batch, half)))
    live, encoded = pool.live, len(orjson.dumps(pool.state()))
    started = time.perf_counter()
    found = referenced_ids(engine)
    assert found is not None
    freed = pool.release(found[0])
    took = time.perf_counter() - started
    return {
        "compaction_partial_matches": engine.live_partial_matches(),
        "compaction_pool_entries_before": live,
        "compaction_pool_entries_after": pool.live,
        "compaction_freed": freed,
        "compaction_pool_json_bytes_before": encoded,
        "compaction_pool_json_bytes_after": len(orjson.dumps(pool.state())),
        "compaction_ms": round(took * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=3_000_000)
    parser.add_argument("--cards", type=int, default=100_000)
    parser.add_argument("--unconfirmed", type=int, default=5_000)
    parser.add_argument("--quiet", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=100_000)
    parser.add_argument("--prefix", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--all-streams", action="store_true", help="all 7 shipped streams")
    args = parser.parse_args()
    rules = load_rule("auth_unconfirmed.cep", "auth_unconfirmed", args.all_streams)
    pool = StringPool()
    started = time.perf_counter()
    columns = make_columns(
        rules, args.events, args.cards, args.unconfirmed, args.quiet, pool, args.seed
    )
    generate_s = time.perf_counter() - started
    rss_data, peak_data = rss_mb(), peak_rss_mb()
    engine = Engine(rules.programs, pool)
    run = run_product(engine, columns, args.batch, idle_after_ms=IDLE_MS)
    peak_product = peak_rss_mb()
    planted = columns.values["planted"]
    found = np.zeros(len(columns), np.bool_)
    found[[e.match.events[0].seq for e in run.emitted]] = True
    idle = [e for e in run.emitted if e.phase == "idle"]
    figures: dict[str, Any] = {
        "rule": "auth_unconfirmed (patterns/auth_unconfirmed.cep)",
        "events": len(columns),
        "cards": args.cards,
        "streams_in_schema": len(rules.schema.streams),
        "columns_in_schema": len(rules.schema.columns),
        "batch": args.batch,
        **run.figures(),
        **fired_by(run, columns),
        "idle_advance_ms": round(run.idle_s * 1000, 2),
        "idle_advance_us_per_match": round(run.idle_s * 1e6 / max(len(idle), 1), 2),
        "planted_busy_cards": int((planted == 1).sum()),
        "planted_busy_found": int((found & (planted == 1)).sum()),
        "planted_quiet_cards": int((planted == 2).sum()),
        "planted_quiet_found": int((found & (planted == 2)).sum()),
    }
    figures.update(
        build_and_memory(engine, generate_s, columns, pool, (rss_data, peak_data, peak_product))
    )
    figures.update(compare_prefix(rules.programs, pool, columns, args.prefix, args.batch))
    figures["peak_rss_mb"] = peak_rss_mb()  # with the reference engine's prefix run
    figures.update(pool_compaction(rules, pool, columns, args.batch))
    report("engine_absence", figures)


if __name__ == "__main__":
    main()
