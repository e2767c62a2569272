"""Redis unavailable for a while: the daemon keeps matching, stops committing, and catches up
without loss when Redis returns (the test starts and stops its own redis-server)."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer
from support import service_config

from cep.loader import compile_paths
from service.app import Service
from service.embedded import EmbeddedRedis, create_topics, producer_defaults

pytestmark = pytest.mark.integration
T0 = 1_767_225_600_000
RULES = """
stream txns key card_id time ts out_of_order 0s fields { card_id: string, amount: float, ts: timestamp }
rule card_testing from txns
  pattern small{3,} consecutive next big
  where small: amount < 5.00
        big: amount > 500.00
  within 10m skip past last
  emit to "ALERTS" { tests: count(small) }
"""


def send(bootstrap: str, topic: str, amounts: list[float], minute: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, **producer_defaults()})
    for i, amount in enumerate(amounts):
        event = {"card_id": "c1", "amount": amount, "ts": T0 + (minute + i) * 60_000}
        producer.produce(topic, orjson.dumps(event), b"c1")
    producer.flush(10)


def consume(service: Service, count: int) -> None:
    consumed, deadline = 0, time.monotonic() + 30
    while consumed < count and time.monotonic() < deadline:
        consumed += service.run_once()
    assert consumed == count


def test_service_survives_a_redis_outage(
    kafka_bootstrap: str, topic_name: str, tmp_path: Path
) -> None:
    inp, alerts = f"{topic_name}-in", f"{topic_name}-alerts"
    create_topics(kafka_bootstrap, {inp: 1, alerts: 1})
    (tmp_path / "r.cep").write_text(RULES.replace("ALERTS", alerts))
    rules = compile_paths([tmp_path])
    redis_server = EmbeddedRedis().start()
    port = redis_server.port
    config = service_config(
        kafka_bootstrap,
        redis_server.url,
        f"cep-{topic_name}",
        inputs=[{"topic": inp, "stream": "txns"}],
        checkpoint_interval_ms=0,
    )
    seen: list[dict[str, object]] = []
    service = Service(config, rules, on_alert=seen.append)
    try:
        send(kafka_bootstrap, inp, [1.0, 2.0, 3.0], 0)
        consume(service, 3)
        redis_server.stop()
        # Redis is gone: matching goes on, checkpoints fail quietly, nothing is committed.
        send(kafka_bootstrap, inp, [900.0, 1.0, 1.0, 1.0], 3)
        consume(service, 4)
        assert [a["fields"] for a in seen] == [{"tests": 3}]
        committed = service.consumer.committed(service.consumer.assignment(), timeout=10)
        assert [tp.offset for tp in committed] == [3]
        # Redis returns (empty, like any restarted in-memory Redis): the next checkpoint
        # saves the live state with the current offsets and commits them.
        redis_server = EmbeddedRedis(port=port).start()
        service.run_once()
        committed = service.consumer.committed(service.consumer.assignment(), timeout=10)
        assert [tp.offset for tp in committed] == [7]
    finally:
        service.close()
    # A restarted instance resumes from that checkpoint: the three small ones wait there.
    send(kafka_bootstrap, inp, [800.0], 7)
    restarted = Service(config, rules, on_alert=seen.append)
    consume(restarted, 1)
    restarted.close()
    redis_server.stop()
    assert [a["fields"] for a in seen] == [{"tests": 3}, {"tests": 3}]
