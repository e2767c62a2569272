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
INPUT_TOPIC = "txns"
ALERT_TOPIC = "fraud.alerts"


def _feed(bootstrap: str, rate: float, stop: threading.Event) -> None:
    """Produce synthetic transactions at `rate` per second, event time = wall clock."""
    producer = Producer({"bootstrap.servers": bootstrap, **producer_defaults()})
    generator = Generator(rate=rate, start_ms=int(time.time() * 1000), fraud_ratio=0.003)
    started = time.monotonic()
    for sent, (_, event) in enumerate(generator.events(10**12)):
        if stop.is_set():
            break
        due = started + sent / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        producer.produce(INPUT_TOPIC, orjson.dumps(event), event["card_id"].encode())
        producer.poll(0)
    producer.flush(5)


def run_demo(duration: float | None, rate: float, metrics_port: int) -> int:
    with EmbeddedBroker() as broker, EmbeddedRedis() as redis_server, stop_on_signals() as stop:
        log.info("broker on %s, redis on %s", broker.bootstrap, redis_server.url)
        create_topics(
            broker.bootstrap, {INPUT_TOPIC: 2, ALERT_TOPIC: 1, "cep.dead-letter": 1, "txns.late": 1}
        )
        config: ServiceConfig = config_from_mapping(
            {
                "inputs": [{"topic": INPUT_TOPIC, "stream": "txns"}],
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
        feeder = threading.Thread(target=_feed, args=(broker.bootstrap, rate, stop), daemon=True)
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
