"""Decode plus engine from raw JSON message bytes: the card-testing workload as the daemon sees it.

`python -m benchmarks.pipeline_bytes [--events N] [--cards K] [--batch B]`

Messages of about 150 bytes, in batches of the size the consumer hands over, go through
the stream decoder into columns and through the product engine (event-time release and
match output included), on one core. Reports events/s of decode alone, engine alone and
the two together, and peak memory.
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

import orjson

from benchmarks.common import peak_rss_mb, report
from cep.compiler import compile_rules
from cep.parser import parse_text
from nfa.batch import StringPool
from nfa.engine import Engine
from nfa.program import used_columns
from service.decode import StreamDecoder

RULE = """
stream txns key card_id time ts out_of_order 5s
  fields { txn_id: string, card_id: string, amount: float, merchant: string, country: string, ts: timestamp }
rule card_testing from txns
  pattern small{3,} consecutive next big
  where small: amount < 5.00
        big: amount > 500.00
  within 10m skip past last
"""


def messages(count: int, cards: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    ts = 1_767_225_600_000
    out = []
    merchants = ["grocer", "fuel", "cafe", "books", "electronics", "travel"]
    for i in range(count):
        ts += rng.randint(0, 3)
        amount = (
            round(rng.uniform(0.5, 4.9), 2)
            if rng.random() < 0.05
            else round(rng.lognormvariate(3.5, 1), 2)
        )
        event = {
            "txn_id": f"t{i:010d}",
            "card_id": f"card-{rng.randrange(cards):07d}",
            "amount": amount,
            "merchant": rng.choice(merchants),
            "country": rng.choice(["FR", "DE", "GB", "US"]),
            "ts": ts,
        }
        out.append(orjson.dumps(event))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--cards", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5000)
    args = parser.parse_args()
    values = messages(args.events, args.cards, 5)
    rules = compile_rules(parse_text(RULE))
    pool, keys = StringPool(), StringPool()
    engine = Engine(rules.programs, pool)
    decoder = StreamDecoder(rules.schema, "txns", pool, keys, 65_536, used_columns(rules.programs))
    decode_s = engine_s = 0.0
    matches = 0
    for start in range(0, len(values), args.batch):
        chunk = values[start : start + args.batch]
        t0 = time.perf_counter()
        batch, _ = decoder.decode(chunk, range(start, start + len(chunk)), [0] * len(chunk))
        t1 = time.perf_counter()
        matches += len(engine.process(batch).matches)
        t2 = time.perf_counter()
        decode_s += t1 - t0
        engine_s += t2 - t1
    t0 = time.perf_counter()
    matches += len(engine.finish().matches)
    engine_s += time.perf_counter() - t0
    n = len(values)
    figures: dict[str, Any] = {
        "events": n,
        "bytes_per_event": round(sum(map(len, values)) / n, 1),
        "batch": args.batch,
        "decode_events_per_s": round(n / decode_s),
        "engine_events_per_s": round(n / engine_s),
        "events_per_s": round(n / (decode_s + engine_s)),
        "matches": matches,
        "peak_rss_mb": peak_rss_mb(),
    }
    report("pipeline_bytes", figures)


if __name__ == "__main__":
    main()
