"""Decoding alone: raw JSON Kafka values of the txns stream into engine columns, in batches.

`python -m benchmarks.decode_json [--events N] [--batches 500,5000] [--repeat R]`

Measures the Numba decoder (`StreamDecoder`) and the orjson reference (`ReferenceDecoder`)
for each batch size: events/s and MB/s of `decode` (which includes joining the values into
one buffer and computing offsets), the join/offset step alone, the fast decoder's first
call (compilation or cache load), and the Python heap peak of one batch (tracemalloc).
The fast decoder is timed after one warm-up pass, as in a running service whose string
tables already know the recurring values (cards, merchants, countries).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections.abc import Callable, Sequence

import numpy as np
import orjson

from benchmarks.common import peak_rss_mb, report
from cep.loader import compile_paths
from nfa.batch import StringPool
from nfa.program import Schema
from service.cli import library_path
from service.decode import ReferenceDecoder, StreamDecoder
from service.generator import Generator

Decoder = ReferenceDecoder | StreamDecoder


def _passes(
    decoder: Decoder, values: list[bytes], batch: int, repeat: int
) -> tuple[float, list[float]]:
    """Best seconds of `repeat` passes over all values, and per-batch seconds of the best."""
    seqs = list(range(len(values)))
    best, per_batch = float("inf"), []
    for _ in range(repeat):
        times = []
        started = time.perf_counter()
        for i in range(0, len(values), batch):
            t0 = time.perf_counter()
            decoder.decode(values[i : i + batch], seqs[i : i + batch], seqs[i : i + batch])
            times.append(time.perf_counter() - t0)
        seconds = time.perf_counter() - started
        if seconds < best:
            best, per_batch = seconds, times
    return best, per_batch


def _join_seconds(values: list[bytes], batch: int) -> float:
    """The join + offsets step of the fast decoder alone, over all values."""
    started = time.perf_counter()
    for i in range(0, len(values), batch):
        chunk = values[i : i + batch]
        raw = b"".join(chunk)
        lengths = np.fromiter(map(len, chunk), np.int64, len(chunk))
        offs = np.zeros(len(chunk) + 1, np.int64)
        np.cumsum(lengths, out=offs[1:])
        np.frombuffer(raw, np.uint8)
    return time.perf_counter() - started


def _heap_peak_mb(make: Callable[[], Decoder], values: Sequence[bytes], batch: int) -> float:
    decoder = make()
    chunk = list(values[:batch])
    decoder.decode(chunk, list(range(len(chunk))), [0] * len(chunk))
    tracemalloc.start()
    decoder.decode(chunk, list(range(len(chunk))), [0] * len(chunk))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return round(peak / 2**20, 2)


def _measure(
    name: str, make: Callable[[], Decoder], values: list[bytes], batch: int, repeat: int
) -> dict[str, float]:
    total = sum(len(v) for v in values)
    decoder = make()
    figures: dict[str, float] = {}
    if name == "fast":
        started = time.perf_counter()
        decoder.decode(values[:batch], list(range(batch)), list(range(batch)))
        figures["first_call_s"] = round(time.perf_counter() - started, 3)
        _passes(decoder, values, batch, 1)  # warm-up: the string tables learn the values
    seconds, per_batch = _passes(decoder, values, batch, repeat)
    figures |= {
        "events_per_s": round(len(values) / seconds),
        "mb_per_s": round(total / seconds / 1e6, 1),
        "batch_ms_p50": round(float(np.median(per_batch)) * 1000, 3),
        "batch_ms_max": round(max(per_batch) * 1000, 3),
        "heap_peak_mb_one_batch": _heap_peak_mb(make, values, batch),
    }
    if name == "fast":
        join = _join_seconds(values, batch)
        figures["join_offsets_ns_per_event"] = round(join / len(values) * 1e9, 1)
        figures["join_offsets_share"] = round(join / seconds, 3)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=500_000, help="generated, all streams")
    parser.add_argument("--batches", default="500,5000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-reference", action="store_true")
    args = parser.parse_args()
    schema: Schema = compile_paths([library_path()]).schema
    # Copied out of orjson's result, which keeps ~4 KiB resident per value (see
    # benchmarks.pipeline_bytes.messages); consumed messages are exact-size allocations.
    values = [
        memoryview(orjson.dumps(e)).tobytes()
        for s, e in Generator(cards=100_000).events(args.events)
        if s == "txns"
    ]
    figures: dict[str, object] = {
        "events": len(values),
        "bytes_per_event": round(sum(map(len, values)) / len(values), 1),
    }
    kinds: dict[str, type[Decoder]] = {"fast": StreamDecoder, "reference": ReferenceDecoder}
    for batch in (int(b) for b in args.batches.split(",")):
        for name, kind in kinds.items():
            if name == "reference" and args.skip_reference:
                continue

            def make(kind: type[Decoder] = kind) -> Decoder:
                return kind(schema, "txns", StringPool(), StringPool(), 65_536)

            repeat = args.repeat if name == "fast" else 1
            figures[f"{name}_batch_{batch}"] = _measure(name, make, values, batch, repeat)
    figures["peak_rss_mb"] = peak_rss_mb()
    report("decode_json", figures)


if __name__ == "__main__":
    main()
