"""The daemon end to end through the embedded broker: throughput with its time split, then
event-to-alert latency at a steady rate, with the broker's own share measured apart.

`python -m benchmarks.daemon_e2e [--events N] [--rate R] [--seconds S] [--engine numba]`

1. Throughput: N card transactions (~150-byte JSON) are produced first; a bare consumer
   with the daemon's settings reads half of them (the broker's and client's ceiling); the daemon (one
   `Service`, one core) consumes, decodes, matches, produces alerts, checkpoints to Redis
   and commits until it has read them all. The wall time is split with the daemon's own
   histograms: decode, engine, emit (alerts built and handed to the producer), checkpoint
   (producer flush + Redis save + commit); the rest is consuming (the client's poll,
   message objects) and the loop itself.
2. Broker alone: for S seconds, R events/s produced at a steady pace with a probe card
   sequence completing every 100 ms; a bare consumer (the daemon's consumer settings)
   reads them. Latency: probe produced -> consumed.
3. Daemon: the same stream into the running daemon. Latency: the probe event that
   completes a match produced -> its alert handed to the producer (`on_alert`).
   The daemon's own share is (3) minus (2).
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer
from prometheus_client import CollectorRegistry

from benchmarks.common import peak_rss_mb, report
from benchmarks.pipeline_bytes import RULE, messages
from cep.compiler import CompiledRules, compile_rules
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

STAGES = ("decode", "engine", "emit", "checkpoint")


def percentiles(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    if not ordered:
        return {"p50": None, "p99": None}
    return {
        "p50": round(statistics.median(ordered), 1),
        "p99": round(ordered[int(0.99 * (len(ordered) - 1))], 1),
    }


def paced_stream(
    producer: Producer, topic: str, rate: int, seconds: float, start_ts: int, tag: str
) -> dict[str, float]:
    """Produce `rate` events/s for `seconds` (background cards, plus a probe sequence
    small, small, small, big every 100 ms); the perf_counter time each probe's big event
    was produced, by probe card."""
    sent: dict[str, float] = {}
    tick = 0.01  # produce in 10 ms slices
    per_tick = max(1, int(rate * tick))
    began = time.perf_counter()
    n = slices = 0
    while time.perf_counter() - began < seconds:
        slice_start = time.perf_counter()
        slices += 1
        for j in range(per_tick):
            n += 1
            event = {
                "txn_id": f"{tag}{n}",
                "card_id": f"bg-{n % 50_000}",
                "amount": 20.0 + (n % 7),
                "merchant": "m",
                "country": "FR",
                "ts": start_ts + n,
            }
            producer.produce(topic, orjson.dumps(event), event["card_id"].encode())
            if j == 0 and slices % 10 == 0:  # a probe every 10 slices
                card = f"probe-{tag}-{n}"
                for k, amount in enumerate([1.0, 2.0, 3.0, 900.0]):
                    n += 1  # event times strictly increase: with no out-of-orderness a
                    # tie with the largest time seen would be late (SEMANTICS.md)
                    probe = {**event, "txn_id": f"{tag}{n}-{k}", "card_id": card}
                    probe["amount"], probe["ts"] = amount, start_ts + n
                    if k == 3:
                        sent[card] = time.perf_counter()
                    producer.produce(topic, orjson.dumps(probe), card.encode())
        producer.poll(0)
        time.sleep(max(0.0, tick - (time.perf_counter() - slice_start)))
    producer.flush(10)
    return sent


def broker_latency(bootstrap: str, topic: str, rate: int, seconds: float, ts: int) -> list[float]:
    """Phase 2: probe produced -> consumed by a bare consumer, in milliseconds."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "bench-bare", **consumer_defaults()}
    )
    consumer.subscribe([topic])
    seen: dict[str, float] = {}
    sent: dict[str, float] = {}
    producer = Producer({"bootstrap.servers": bootstrap, **producer_defaults()})
    thread = threading.Thread(
        target=lambda: sent.update(paced_stream(producer, topic, rate, seconds, ts, "b"))
    )
    deadline = time.monotonic() + 30
    while not consumer.assignment() and time.monotonic() < deadline:
        consumer.poll(0.1)
    thread.start()
    while thread.is_alive() or len(seen) < len(sent):
        for message in consumer.consume(5000, 0.05):
            key = message.key() or b""
            if message.error() is None and key.startswith(b"probe-"):
                value = orjson.loads(message.value() or b"{}")
                if value["amount"] == 900.0:
                    seen[key.decode()] = time.perf_counter()
        if not thread.is_alive() and time.monotonic() > deadline + seconds + 30:
            break
    thread.join()
    consumer.close()
    return [(seen[c] - t) * 1000 for c, t in sent.items() if c in seen]


def daemon_latency(
    service: Service,
    seen: dict[str, float],
    bootstrap: str,
    rate: int,
    seconds: float,
    ts: int,
) -> list[float]:
    """Phase 3: probe produced -> alert handed to the producer, in milliseconds."""
    sent: dict[str, float] = {}
    producer = Producer({"bootstrap.servers": bootstrap, **producer_defaults()})
    thread = threading.Thread(
        target=lambda: sent.update(paced_stream(producer, "txns", rate, seconds, ts, "d"))
    )
    thread.start()
    deadline = time.monotonic() + seconds + 60
    while time.monotonic() < deadline and (
        thread.is_alive() or len([c for c in sent if c in seen]) < len(sent)
    ):
        service.run_once()
    thread.join()
    return [(seen[c] - t) * 1000 for c, t in sent.items() if c in seen]


def bare_consume_rate(bootstrap: str, topic: str, count: int, max_messages: int) -> float:
    """Messages/s a bare consumer (the daemon's settings and batch size) reads `topic` at:
    the broker's and client's own ceiling for phase 1."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "bench-bare-read", **consumer_defaults()}
    )
    consumer.subscribe([topic])
    read, first = 0, None
    deadline = time.monotonic() + 300
    while read < count and time.monotonic() < deadline:
        got = [m for m in consumer.consume(max_messages, 0.05) if m.error() is None]
        if got and first is None:
            first = time.perf_counter()
        elif first is not None:
            read += len(got)
    consumer.close()
    return read / (time.perf_counter() - first) if first is not None else 0.0


def histogram_sum(registry: CollectorRegistry, name: str) -> float:
    return float(registry.get_sample_value(f"cep_{name}_seconds_sum") or 0.0)


def throughput(
    service: Service, registry: CollectorRegistry, count: int
) -> tuple[float, dict[str, float]]:
    """Phase 1: events/s and the share of each stage in the wall time."""
    consumed, first = 0, None
    before: dict[str, float] = {}
    while consumed < count:
        got = service.run_once()
        if got and first is None:
            first = time.perf_counter()
            before = {name: histogram_sum(registry, name) for name in STAGES}
        consumed += got
    service.checkpoint()
    assert first is not None
    wall = time.perf_counter() - first
    split = {name: histogram_sum(registry, name) - before[name] for name in STAGES}
    split["consume_and_loop"] = wall - sum(split.values())
    return consumed / wall, {name: round(100 * s / wall, 1) for name, s in split.items()}


def build_rules() -> CompiledRules:
    # 1 ms of out-of-orderness: the latency measured is the daemon's, not the event-time
    # wait, and events that tie the largest time seen are not late (SEMANTICS.md).
    text = RULE.replace("out_of_order 5s", "out_of_order 1ms").replace(
        "within 10m skip past last",
        'within 10m skip past last\n  emit to "alerts" { n: count(small) }',
    )
    return compile_rules(parse_text(text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--engine", default="numba")
    parser.add_argument("--rate", type=int, default=10_000, help="events/s in phases 2-3")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of phases 2-3")
    args = parser.parse_args()
    rules = build_rules()
    with EmbeddedBroker() as broker, EmbeddedRedis() as redis_server:
        create_topics(
            broker.bootstrap,
            {"txns": 2, "bare": 1, "alerts": 1, "txns.late": 1, "cep.dead-letter": 1},
        )
        producer = Producer(
            {"bootstrap.servers": broker.bootstrap, **producer_defaults(), "linger.ms": 20}
        )
        values = messages(args.events, 100_000, 9)
        for value in values:
            producer.produce("txns", value, orjson.loads(value)["card_id"].encode())
            producer.poll(0)
        producer.flush(60)
        last_ts = int(orjson.loads(values[-1])["ts"])

        base = config_from_mapping(
            {"inputs": [{"topic": "txns", "stream": "txns"}], "engine": args.engine}
        )
        kafka = KafkaConfig(broker.bootstrap, "bench", consumer_defaults(), producer_defaults())
        config = ServiceConfig(**{**base.__dict__, "kafka": kafka, "redis_url": redis_server.url})
        seen: dict[str, float] = {}
        on_alert: Callable[[dict[str, Any]], None] = lambda a: seen.setdefault(  # noqa: E731
            a["key"], time.perf_counter()
        )
        bare_rate = bare_consume_rate(
            broker.bootstrap, "txns", len(values) // 2, config.batch.max_messages
        )
        registry = CollectorRegistry()
        service = Service(config, rules, registry=registry, on_alert=on_alert)
        events_per_s, split = throughput(service, registry, len(values))

        bare = broker_latency(broker.bootstrap, "bare", args.rate, args.seconds, last_ts)
        daemon = daemon_latency(
            service, seen, broker.bootstrap, args.rate, args.seconds, last_ts + 10**8
        )
        service.close()
    broker_ms, daemon_ms = percentiles(bare), percentiles(daemon)
    figures: dict[str, Any] = {
        "events": len(values),
        "engine": args.engine,
        "events_per_s": round(events_per_s),
        "time_split_percent": split,
        "bare_consumer_messages_per_s": round(bare_rate),
        "latency_rate_events_per_s": args.rate,
        "broker_latency_ms": broker_ms,
        "daemon_latency_ms": daemon_ms,
        "daemon_share_ms_p50": (
            round(daemon_ms["p50"] - broker_ms["p50"], 1)
            if daemon_ms["p50"] is not None and broker_ms["p50"] is not None
            else None
        ),
        "probes": {"broker": len(bare), "daemon": len(daemon)},
        "peak_rss_mb": peak_rss_mb(),
    }
    report("daemon_e2e", figures)


if __name__ == "__main__":
    main()
