"""`cep demo`: the whole service on an embedded broker and Redis, with synthetic traffic.

Starts the bundled Kafka-protocol broker and a local redis-server, creates the topics,
streams synthetic transactions with injected fraud into the input topic, runs the daemon
on the shipped rules, and prints alerts as they arrive. Stops on Ctrl+C or after
`--duration` seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import orjson
from confluent_kafka import Producer

from cep.loader import load_paths
from service.cli import library_path
from service.config import KafkaConfig, MetricsConfig, ServiceConfig, config_from_mapping
from service.embedded import (
    EmbeddedBroker,
    EmbeddedRedis,
    consumer_defaults,
    create_topics,
    producer_defaults,
)
from service.generator import Generator
from service.runner import serve, stop_on_signals

log = logging.getLogger("cep.demo")
ALERT_TOPIC = "fraud.alerts"
PARTITIONS = 2


SPEEDUP = 60  # seconds of event time per second of wall clock, so scenarios unfold quickly


def _feed(bootstrap: str, keys: dict[str, str], rate: float, stop: threading.Event) -> None:
    """Produce synthetic events of every stream to its topic, keyed by the stream's key.

    About `rate` events per wall-clock second; event time runs SPEEDUP times faster than
    the wall clock, so a ten-minute fraud scenario plays out in ten seconds.
    """
    producer = Producer({"bootstrap.servers": bootstrap, **producer_defaults()})
    start_ms = int(time.time() * 1000)
    generator = Generator(rate=rate / SPEEDUP, start_ms=start_ms, fraud_ratio=0.005)
    started = time.monotonic()
    for stream, event in generator.events(10**12):
        if stop.is_set():
            break
        due = started + (int(event.get("ts", start_ms)) - start_ms) / 1000 / SPEEDUP
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(min(delay, 1.0))
        producer.produce(stream, orjson.dumps(event), str(event[keys[stream]]).encode())
        producer.poll(0)
    producer.flush(5)


def run_demo(duration: float | None, rate: float, metrics_port: int, engine: str = "numba") -> int:
    with EmbeddedBroker() as broker, EmbeddedRedis() as redis_server, stop_on_signals() as stop:
        log.info("broker on %s, redis on %s", broker.bootstrap, redis_server.url)
        streams = {s.name: s.key for s in load_paths([library_path()]).compile().schema.streams}
        topics = {name: PARTITIONS for name in streams}
        topics.update({f"{name}.late": 1 for name in streams})
        topics.update({ALERT_TOPIC: 1, "cep.dead-letter": 1, "cep.shadow": 1})
        create_topics(broker.bootstrap, topics)
        config: ServiceConfig = config_from_mapping(
            {
                "inputs": [{"topic": name, "stream": name} for name in streams],
                "engine": engine,
                "redis_url": redis_server.url,
                "batch": {"max_messages": 5000, "max_wait_ms": 50},
            }
        )
        config = ServiceConfig(
            **{
                **config.__dict__,
                "kafka": KafkaConfig(
                    broker.bootstrap,
                    "cep-demo",
                    consumer=consumer_defaults(),
                    producer=producer_defaults(),
                ),
                "metrics": MetricsConfig(port=metrics_port),
            }
        )
        feeder = threading.Thread(
            target=_feed, args=(broker.bootstrap, streams, rate, stop), daemon=True
        )
        feeder.start()
        counts: dict[str, int] = {}

        def on_alert(alert: dict[str, Any]) -> None:
            counts[alert["rule"]] = counts.get(alert["rule"], 0) + 1
            summary = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
            print(
                f"ALERT {alert['rule']} key={alert['key']} fields={alert['fields']}  [{summary}]",
                flush=True,
            )

        try:
            serve(config, stop, duration=duration, on_alert=on_alert)
        finally:
            stop.set()
            feeder.join(5)
        print(f"demo finished: {sum(counts.values())} alert(s)", flush=True)
    return 0
