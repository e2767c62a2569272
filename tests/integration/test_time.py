"""Time in the daemon: a quiet input still advances (idleness, injected clock), so an absence
fires with no further event; processing-time streams are stamped on arrival."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer
from support import drain, service_config

from cep.loader import compile_paths
from service.app import Service
from service.embedded import create_topics, producer_defaults

pytestmark = pytest.mark.integration
T0 = 1_767_225_600_000
RULES = """
stream auths key card_id time ts out_of_order 0s idle 1s fields { card_id: string, ts: timestamp }
rule unconfirmed from auths
  pattern auth not followed by confirm
  where confirm: false
  within 5m
  emit to "ALERTS" { at: auth.ts }
"""
CLICKS = """
stream clicks key card_id time processing fields { card_id: string }
rule double_click from clicks
  pattern first next second
  within 1s
  emit to "ALERTS" { n: count(first) }
"""


class FakeClock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> float:
        return self.now_ms / 1000


def consume(service: Service, count: int) -> None:
    consumed, deadline = 0, time.monotonic() + 30
    while consumed < count and time.monotonic() < deadline:
        consumed += service.run_once()
    assert consumed == count


def test_absence_fires_on_a_quiet_input(
    kafka_bootstrap: str, redis_url: str, topic_name: str, tmp_path: Path
) -> None:
    auths, alerts = f"{topic_name}-auths", f"{topic_name}-alerts"
    create_topics(kafka_bootstrap, {auths: 1, alerts: 1})
    (tmp_path / "r.cep").write_text(RULES.replace("ALERTS", alerts))
    producer = Producer({"bootstrap.servers": kafka_bootstrap, **producer_defaults()})
    producer.produce(auths, orjson.dumps({"card_id": "c1", "ts": T0}), b"c1")
    producer.flush(10)
    clock = FakeClock(T0 + 1000)
    config = service_config(
        kafka_bootstrap,
        redis_url,
        f"cep-{topic_name}",
        inputs=[{"topic": auths, "stream": "auths"}],
    )
    seen: list[dict[str, object]] = []
    service = Service(config, compile_paths([tmp_path]), clock=clock, on_alert=seen.append)
    consume(service, 1)
    service.run_once()
    assert seen == []  # the window is open and the clock has not passed the idle period
    # Nothing else ever arrives; the clock passes the idle period and the window.
    clock.now_ms = T0 + 6 * 60_000
    service.run_once()
    service.close()
    assert [a["rule"] for a in seen] == ["unconfirmed"]
    assert seen[0]["time"] == T0 + 5 * 60_000
    assert len(drain(kafka_bootstrap, alerts, 1)) == 1


def test_processing_time_matches_on_arrival(
    kafka_bootstrap: str, redis_url: str, topic_name: str, tmp_path: Path
) -> None:
    clicks, alerts = f"{topic_name}-clicks", f"{topic_name}-alerts"
    create_topics(kafka_bootstrap, {clicks: 1, alerts: 1})
    (tmp_path / "r.cep").write_text(CLICKS.replace("ALERTS", alerts))
    producer = Producer({"bootstrap.servers": kafka_bootstrap, **producer_defaults()})
    for _ in range(2):
        producer.produce(clicks, orjson.dumps({"card_id": "c2"}), b"c2")
    producer.flush(10)
    config = service_config(
        kafka_bootstrap,
        redis_url,
        f"cep-{topic_name}",
        inputs=[{"topic": clicks, "stream": "clicks"}],
    )
    seen: list[dict[str, object]] = []
    service = Service(config, compile_paths([tmp_path]), clock=FakeClock(T0), on_alert=seen.append)
    consume(service, 2)
    service.close()
    # Both clicks arrived at the same instant: neither is late, and they match at once.
    assert [(a["rule"], a["time"]) for a in seen] == [("double_click", T0)]
