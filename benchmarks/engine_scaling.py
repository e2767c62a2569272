"""How the product engine scales: keys, window length and number of rules.

Run: `python -m benchmarks.engine_scaling [--quick]`. Every case is the card-testing
workload of `benchmarks.engine_card_testing` (events in time order over two hours, batches
of 100k through `Engine.process`, then `finish`), timed after the kernels are loaded, and
reports events/s, rule-events/s (events x rules), peak live partial matches and state
bytes per peak live partial match (allocated arrays, so capacity slack counts). Many rules
are the same shape with different thresholds (loop minimum 3..5, big amount 500..950).
Prints one JSON document through `benchmarks.common.report`.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from benchmarks.common import peak_rss_mb, report
from benchmarks.engine_card_testing import make_events
from cep.compiler import compile_rules
from cep.parser import parse_text
from nfa.batch import StringPool
from nfa.engine import Engine

STREAM = (
    "stream txns key card_id time ts out_of_order 0s "
    "fields { card_id: string, amount: float, ts: timestamp }\n"
)
RULE = """
rule card_testing_{k}
  from txns
  pattern small{{{low},}} consecutive next big
  where small: amount < 5.00
        big: amount > {big}.00
  within {window} skip past last
  emit to "fraud.alerts" {{ tests: count(small), amount: big.amount }}
"""


def rules_text(n: int, window: str) -> str:
    parts = [
        RULE.format(k=k, low=3 + k % 3, big=500 + 50 * (k % 10), window=window) for k in range(n)
    ]
    return STREAM + "".join(parts)


def run(events: int, keys: int, window: str, n_rules: int, batch: int = 100_000) -> dict[str, Any]:
    rules = compile_rules(parse_text(rules_text(n_rules, window), "scaling.cep"))
    pool = StringPool()
    data = make_events(events, keys, pool)
    started = time.perf_counter()
    engine = Engine(rules.programs, pool)
    build_s = time.perf_counter() - started
    peak, matches = 0, 0
    started = time.perf_counter()
    for lo in range(0, events, batch):
        out = engine.process(data.slice(lo, min(lo + batch, events)))
        matches += len(out.matches)
        peak = max(peak, engine.live_partial_matches())
    matches += len(engine.finish().matches)
    elapsed = time.perf_counter() - started
    return {
        "events": events,
        "keys": keys,
        "window": window,
        "rules": n_rules,
        "events_per_s": round(events / elapsed),
        "rule_events_per_s": round(events * n_rules / elapsed),
        "matches": matches,
        "peak_partial_matches": peak,
        "state_bytes": engine.state_bytes(),
        "state_bytes_per_partial_match": round(engine.state_bytes() / max(peak, 1)),
        "engine_build_s": round(build_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a tenth of the events")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    cases: list[dict[str, Any]] = []
    for keys in (1_000, 10_000, 100_000, 1_000_000):
        cases.append(run(2_000_000 // scale, keys, "10m", 1))
    for window in ("1m", "10m", "1h"):
        cases.append(run(2_000_000 // scale, 100_000, window, 1))
    for n_rules in (1, 10, 100, 1000):  # 10k keys: each rule keeps 16 bytes per key id
        cases.append(run(max(10_000, 1_000_000 // n_rules) // scale, 10_000, "10m", n_rules))
    report("engine_scaling", {"cases": cases, "peak_rss_mb": peak_rss_mb()})


if __name__ == "__main__":
    main()
