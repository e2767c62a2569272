"""Decoding alone: raw JSON Kafka values of the txns stream into engine columns, in batches.

`python -m benchmarks.decode_json [--events N] [--batch B]`
"""

from __future__ import annotations

import argparse
import time

import orjson

from benchmarks.common import peak_rss_mb, report
from cep.loader import compile_paths
from nfa.batch import StringPool
from service.cli import library_path
from service.decode import StreamDecoder
from service.generator import Generator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--batch", type=int, default=5000)
    args = parser.parse_args()
    schema = compile_paths([library_path()]).schema
    values = [
        orjson.dumps(e) for s, e in Generator(cards=100_000).events(args.events) if s == "txns"
    ]
    decoder = StreamDecoder(schema, "txns", StringPool(), StringPool(), 65_536)
    seqs = list(range(len(values)))
    stamps = [0] * len(values)
    started = time.perf_counter()
    for i in range(0, len(values), args.batch):
        decoder.decode(
            values[i : i + args.batch], seqs[i : i + args.batch], stamps[i : i + args.batch]
        )
    seconds = time.perf_counter() - started
    total_bytes = sum(len(v) for v in values)
    report(
        "decode_json",
        {
            "events": len(values),
            "batch": args.batch,
            "bytes_per_event": round(total_bytes / len(values), 1),
            "events_per_s": round(len(values) / seconds),
            "mb_per_s": round(total_bytes / seconds / 1e6, 1),
            "peak_rss_mb": peak_rss_mb(),
        },
    )


if __name__ == "__main__":
    main()
