"""Workload: the strict card-testing rule over 100,000 cards and 5 million events.

Run: `python -m benchmarks.engine_card_testing [--events N] [--cards N] [--batch N]`.
Prints JSON: events_per_s (Engine.process in batches plus finish, compiled kernels loaded
before timing), matches, peak_rss_mb, state_bytes_per_partial_match and
reference_events_per_s (the reference engine on the first 100k events).
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np

from cep.compiler import compile_rules
from cep.parser import parse_text
from nfa.batch import EventBatch, StringPool
from nfa.engine import Engine
from nfa.reference import ReferenceEngine

RULES = """
stream txns key card_id time ts out_of_order 0s fields { card_id: string, amount: float, ts: timestamp }
rule card_testing
  from txns
  pattern small{3,} consecutive next big
  where small: amount < 5.00
        big: amount > 500.00
  within 10m skip past last
  emit to "fraud.alerts" { tests: count(small), amount: big.amount }
"""


def make_events(n: int, cards: int, pool: StringPool, seed: int = 7) -> EventBatch:
    """n events in time order over two hours: 30% small amounts, 5% big ones."""
    rng = np.random.default_rng(seed)
    card = rng.integers(0, cards, n)
    ids = np.array([pool.intern(f"card{c}") for c in range(cards)], np.int64)
    kind = rng.random(n)
    amount = np.where(kind < 0.3, rng.uniform(0.5, 4.9, n), rng.uniform(10, 200, n))
    amount = np.where(kind > 0.95, rng.uniform(501, 2000, n), amount)
    ts = np.arange(n, dtype=np.int64) * 7_200_000 // n
    return EventBatch(
        np.zeros(n, np.int8),
        card.astype(np.int64) + 1,
        ts,
        np.arange(n, dtype=np.int64),
        amount.reshape(1, n),
        np.stack([ids[card], ts]),
        np.ones((3, n), np.bool_),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--cards", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=100_000)
    args = parser.parse_args()
    rules = compile_rules(parse_text(RULES, "bench.cep"))
    pool = StringPool()
    events = make_events(args.events, args.cards, pool)
    started = time.perf_counter()
    engine = Engine(rules.programs, pool)
    build_s = time.perf_counter() - started
    matches = 0
    peak_runs = 0
    started = time.perf_counter()
    for lo in range(0, args.events, args.batch):
        out = engine.process(events.slice(lo, min(lo + args.batch, args.events)))
        matches += len(out.matches)
        peak_runs = max(peak_runs, engine.live_partial_matches())
    matches += len(engine.finish().matches)
    elapsed = time.perf_counter() - started
    state_bytes = engine.state_bytes()

    reference = ReferenceEngine(rules.programs, pool)
    head = events.slice(0, min(100_000, args.events))
    started = time.perf_counter()
    reference.process(head)
    reference_s = time.perf_counter() - started
    print(
        json.dumps(
            {
                "events": args.events,
                "cards": args.cards,
                "events_per_s": round(args.events / elapsed),
                "matches": matches,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "peak_partial_matches": peak_runs,
                "state_bytes": state_bytes,
                "state_bytes_per_partial_match": round(state_bytes / max(peak_runs, 1)),
                "engine_build_s": round(build_s, 3),
                "reference_events_per_s": round(len(head) / reference_s),
            }
        )
    )


if __name__ == "__main__":
    main()
