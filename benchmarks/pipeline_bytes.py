"""Decode plus engine from raw JSON message bytes: the card-testing workload as the daemon sees it.

`python -m benchmarks.pipeline_bytes [--events N] [--cards K] [--batch B] [--plain]`

Messages of about 150 bytes (`--plain`: 118, without the two fields the stream does not
declare), in batches of the size the consumer hands over (a list of `bytes`, sequence
numbers as a list of ints, as `service.app` passes them), go through the stream decoder
into columns and through the product engine (event-time release and match output
included), on one core. The decoder starts cold: its string table learns the 100k cards
during the run. Reports events/s of decode alone, engine alone and the two together (by
the clock, and by this thread's CPU time, which other processes on a shared machine
inflate less; the load average is reported beside), the first decode call (Numba cache
load) apart, and memory: the input held by the benchmark,
the process peak (message generation included), and how far the peak rose above the
resident size while the pipeline ran (the decoder's and engine's own memory).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from typing import Any

import numpy as np
import orjson

from benchmarks.common import peak_rss_mb, report, reset_peak_rss, rss_mb
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


def messages(count: int, cards: int, seed: int, extra: bool = True) -> list[bytes]:
    """`count` JSON values of the txns stream; `extra` adds two undeclared fields.

    Each value is copied out of orjson's result: `orjson.dumps` hands back a bytes object
    whose allocation keeps about 4 KiB resident after it shrinks, so two million of them
    held 8 GB. A consumer's messages are exact-size allocations like these copies.
    """
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
        event: dict[str, Any] = {
            "txn_id": f"t{i:010d}",
            "card_id": f"card-{rng.randrange(cards):07d}",
            "amount": amount,
            "merchant": rng.choice(merchants),
            "country": rng.choice(["FR", "DE", "GB", "US"]),
            "ts": ts,
        }
        if extra:
            event["currency"] = "EUR" if event["country"] in ("FR", "DE") else "USD"
            event["channel"] = rng.choice(["ecommerce", "pos", "atm"])
        out.append(memoryview(orjson.dumps(event)).tobytes())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--cards", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--plain", action="store_true", help="118-byte messages")
    args = parser.parse_args()
    values = messages(args.events, args.cards, 5, not args.plain)
    rules = compile_rules(parse_text(RULE))
    pool, keys = StringPool(), StringPool()
    engine = Engine(rules.programs, pool)  # compiles or loads the rule's kernel
    decoder = StreamDecoder(rules.schema, "txns", pool, keys, 65_536, used_columns(rules.programs))
    started = time.perf_counter()
    StreamDecoder(rules.schema, "txns", StringPool(), StringPool(), 65_536).decode(
        values[:10], list(range(10)), [0] * 10
    )
    first_call_s = time.perf_counter() - started
    input_mb = sum(map(sys.getsizeof, values)) / 2**20
    setup_peak_mb, before_mb = peak_rss_mb(), rss_mb()
    peak_reset = reset_peak_rss()
    wall = np.zeros(2)  # decode, engine: seconds
    cpu = np.zeros(2)  # the same in this thread's CPU time, which a busy machine inflates less
    matches = 0
    for start in range(0, len(values), args.batch):
        chunk = values[start : start + args.batch]
        seqs, stamps = list(range(start, start + len(chunk))), [0] * len(chunk)
        t0, c0 = time.perf_counter(), time.thread_time()
        batch, _ = decoder.decode(chunk, seqs, stamps)
        t1, c1 = time.perf_counter(), time.thread_time()
        matches += len(engine.process(batch).matches)
        wall += (t1 - t0, time.perf_counter() - t1)
        cpu += (c1 - c0, time.thread_time() - c1)
    t0, c0 = time.perf_counter(), time.thread_time()
    matches += len(engine.finish().matches)
    wall[1] += time.perf_counter() - t0
    cpu[1] += time.thread_time() - c0
    n = len(values)
    figures: dict[str, Any] = {
        "events": n,
        "bytes_per_event": round(sum(map(len, values)) / n, 1),
        "batch": args.batch,
        "decode_events_per_s": round(n / wall[0]),
        "engine_events_per_s": round(n / wall[1]),
        "events_per_s": round(n / wall.sum()),
        "cpu_decode_events_per_s": round(n / cpu[0]),
        "cpu_engine_events_per_s": round(n / cpu[1]),
        "cpu_events_per_s": round(n / cpu.sum()),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "matches": matches,
        "first_decode_call_s": round(first_call_s, 3),
        "input_mb": round(input_mb, 1),
        "rss_before_run_mb": round(before_mb, 1),
        "peak_rss_mb": max(setup_peak_mb, peak_rss_mb()),
    }
    if peak_reset:
        figures["run_peak_growth_mb"] = round(peak_rss_mb() - before_mb, 1)
    report("pipeline_bytes", figures)


if __name__ == "__main__":
    main()
