"""The broker restarted mid-stream: an in-memory broker loses its data, so the test re-creates
the topics; the daemon must reconnect and resume without crashing."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer
from support import service_config

from cep.loader import compile_paths
from service.app import Service
from service.embedded import EmbeddedBroker, create_topics, producer_defaults

pytestmark = pytest.mark.integration
T0 = 1_767_225_600_000
RULES = """
stream txns key card_id time ts out_of_order 0s fields { card_id: string, amount: float, ts: timestamp }
rule card_testing from txns
  pattern small{3,} consecutive next big
  where small: amount < 5.00
        big: amount > 500.00
  within 10m skip past last
  emit to "alerts" { tests: count(small) }
"""


def send(bootstrap: str, card: str, minute: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, **producer_defaults()})
    for i, amount in enumerate([1.0, 2.0, 3.0, 900.0]):
        event = {"card_id": card, "amount": amount, "ts": T0 + (minute + i) * 60_000}
        producer.produce("txns", orjson.dumps(event), card.encode())
    producer.flush(10)


def run_until(service: Service, done: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:  # type: ignore[operator]
        service.run_once()


def test_service_resumes_after_a_broker_restart(redis_url: str, tmp_path: Path) -> None:
    (tmp_path / "r.cep").write_text(RULES)
    broker = EmbeddedBroker().start()
    port = broker.port
    create_topics(broker.bootstrap, {"txns": 1, "alerts": 1, "txns.late": 1, "cep.dead-letter": 1})
    config = service_config(
        broker.bootstrap,
        redis_url,
        "cep-restart",
        inputs=[{"topic": "txns", "stream": "txns"}],
        checkpoint_interval_ms=200,
    )
    seen: list[dict[str, object]] = []
    service = Service(config, compile_paths([tmp_path]), on_alert=seen.append)
    try:
        send(broker.bootstrap, "c1", 0)
        run_until(service, lambda: len(seen) == 1, 30)
        assert [a["key"] for a in seen] == ["c1"]
        broker.stop()
        for _ in range(20):  # the broker is gone: the loop goes on
            service.run_once()
        broker = EmbeddedBroker(port=port).start()
        create_topics(
            broker.bootstrap, {"txns": 1, "alerts": 1, "txns.late": 1, "cep.dead-letter": 1}
        )
        send(broker.bootstrap, "c2", 10)
        run_until(service, lambda: len(seen) == 2, 90)
        assert [a["key"] for a in seen] == ["c1", "c2"]
    finally:
        service.close()
        broker.stop()
