"""The daemon end to end through the embedded broker: throughput, then alert latency.

`python -m benchmarks.daemon_e2e [--events N] [--engine numba|reference]`

1. Throughput: N card transactions are produced first; the daemon consumes, decodes,
   matches, produces alerts, checkpoints to Redis and commits until it has read them all.
2. Latency: card-testing sequences produced at a steady pace; the time from producing the
   event that completes a match to the daemon handing the alert to the producer.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from typing import Any

import orjson
from confluent_kafka import Producer

from benchmarks.common import peak_rss_mb, report
from benchmarks.pipeline_bytes import RULE, messages
from cep.compiler import compile_rules
from cep.parser import parse_text
from service.app import Service
from service.config import KafkaConfig, ServiceConfig, config_from_mapping
from service.embedded import (
    EmbeddedBroker,
    EmbeddedRedis,
    consumer_defaults,
    create_topics,
    producer_defaults,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--engine", default="numba")
    parser.add_argument("--probes", type=int, default=50)
    args = parser.parse_args()
    # No out-of-orderness here: the latency measured is the daemon's, not the event-time wait.
    rules = compile_rules(
        parse_text(
            RULE.replace("out_of_order 5s", "out_of_order 0s").replace(
                "within 10m skip past last",
                'within 10m skip past last\n  emit to "alerts" { n: count(small) }',
            )
        )
    )
    with EmbeddedBroker() as broker, EmbeddedRedis() as redis_server:
        create_topics(
            broker.bootstrap, {"txns": 2, "alerts": 1, "txns.late": 1, "cep.dead-letter": 1}
        )
        producer = Producer(
            {"bootstrap.servers": broker.bootstrap, **producer_defaults(), "linger.ms": 20}
        )
        values = messages(args.events, 100_000, 9)
        for value in values:
            producer.produce("txns", value, orjson.loads(value)["card_id"].encode())
            producer.poll(0)
        producer.flush(60)
        base = config_from_mapping(
            {"inputs": [{"topic": "txns", "stream": "txns"}], "engine": args.engine}
        )
        kafka = KafkaConfig(broker.bootstrap, "bench", consumer_defaults(), producer_defaults())
        config = ServiceConfig(**{**base.__dict__, "kafka": kafka, "redis_url": redis_server.url})
        seen: dict[str, float] = {}
        service = Service(
            config, rules, on_alert=lambda a: seen.setdefault(a["key"], time.perf_counter())
        )
        consumed, first = 0, None
        while consumed < len(values):
            got = service.run_once()
            if got and first is None:
                first = time.perf_counter()
            consumed += got
        service.checkpoint()
        assert first is not None
        throughput = consumed / (time.perf_counter() - first)

        sent: dict[str, float] = {}
        stop = threading.Event()

        def probe() -> None:
            ts = orjson.loads(values[-1])["ts"] + 60_000
            for i in range(args.probes):
                card = f"probe-{i}"
                for j, amount in enumerate([1.0, 2.0, 3.0, 900.0]):
                    event = {
                        "txn_id": f"p{i}-{j}",
                        "card_id": card,
                        "amount": amount,
                        "merchant": "x",
                        "country": "FR",
                        "ts": ts + i * 1000 + j,
                    }
                    if j == 3:
                        sent[card] = time.perf_counter()
                    producer.produce("txns", orjson.dumps(event), card.encode())
                producer.flush(10)
                time.sleep(0.05)
            stop.set()

        thread = threading.Thread(target=probe)
        thread.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (
            not stop.is_set() or len([c for c in sent if c in seen]) < len(sent)
        ):
            service.run_once()
        thread.join()
        service.close()
    latencies = sorted((seen[c] - t) * 1000 for c, t in sent.items() if c in seen)
    figures: dict[str, Any] = {
        "events": consumed,
        "engine": args.engine,
        "events_per_s": round(throughput),
        "latency_ms_p50": round(statistics.median(latencies), 1) if latencies else None,
        "latency_ms_p99": round(latencies[int(0.99 * (len(latencies) - 1))], 1)
        if latencies
        else None,
        "probes_alerted": f"{len(latencies)}/{args.probes}",
        "peak_rss_mb": peak_rss_mb(),
    }
    report("daemon_e2e", figures)


if __name__ == "__main__":
    main()
