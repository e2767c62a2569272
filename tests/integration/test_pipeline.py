"""The walking skeleton end to end: rule file -> compiled -> Kafka in -> match -> Kafka out."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer
from support import drain

from cep.loader import compile_paths
from service.app import Service
from service.config import KafkaConfig, ServiceConfig, config_from_mapping
from service.embedded import consumer_defaults, create_topics, producer_defaults

pytestmark = pytest.mark.integration

RULES = """
stream txns key card_id time ts out_of_order 0s
  fields { card_id: string, amount: float, merchant: string, ts: timestamp }

rule card_testing
  from txns
  pattern small{3,} consecutive next big
  where small: amount < 5.00
        big: amount > 500.00
  within 10m
  skip past last
  emit to "ALERTS" { tests: count(small), amount: big.amount, merchant: big.merchant }
"""


def test_rule_file_to_alert_topic(
    kafka_bootstrap: str, redis_url: str, topic_name: str, tmp_path: Path
) -> None:
    inp, alerts, dlq, late = (
        f"{topic_name}-in",
        f"{topic_name}-alerts",
        f"{topic_name}-dlq",
        f"{topic_name}-late",
    )
    create_topics(kafka_bootstrap, {inp: 2, alerts: 1, dlq: 1, late: 1})
    rule_file = tmp_path / "rules.cep"
    rule_file.write_text(RULES.replace("ALERTS", alerts))
    compiled = compile_paths([rule_file])
    base = config_from_mapping(
        {
            "inputs": [{"topic": inp, "stream": "txns"}],
            "redis_url": redis_url,
            "dead_letter_topic": dlq,
            "late_topic": late,
            "batch": {"max_messages": 500, "max_wait_ms": 50},
        }
    )
    config = ServiceConfig(
        **{
            **base.__dict__,
            "kafka": KafkaConfig(
                kafka_bootstrap, f"cep-{topic_name}", consumer_defaults(), producer_defaults()
            ),
        }
    )
    producer = Producer({"bootstrap.servers": kafka_bootstrap, **producer_defaults()})
    events = [
        ("c1", 1.0, 0),
        ("c2", 1.5, 1),
        ("c1", 2.0, 2),
        ("c1", 3.0, 3),
        ("c1", 900.0, 4),
        ("c2", 70.0, 5),
    ]
    for card, amount, minute in events:
        value = {
            "card_id": card,
            "amount": amount,
            "merchant": "shop",
            "ts": 1_767_225_600_000 + minute * 60_000,
        }
        producer.produce(inp, orjson.dumps(value), card.encode())
    # Malformed, wrongly typed, missing the key, and oversized: all dead letters.
    bad = [
        b"{not json",
        orjson.dumps({"card_id": "c1", "amount": "lots", "merchant": "x", "ts": 1_767_225_600_000}),
        orjson.dumps({"amount": 1.0, "merchant": "x", "ts": 1_767_225_600_000}),
        orjson.dumps(
            {"card_id": "c1", "amount": 1.0, "merchant": "x" * 70_000, "ts": 1_767_225_600_000}
        ),
    ]
    for value in bad:
        producer.produce(inp, value, b"c1")
    # c1's watermark is at minute 4 by now; an event at minute 1 on the same partition is late.
    producer.produce(
        inp,
        orjson.dumps(
            {"card_id": "c1", "amount": 1.0, "merchant": "x", "ts": 1_767_225_600_000 + 60_000}
        ),
        b"c1",
    )
    producer.flush(10)

    seen: list[dict[str, object]] = []
    service = Service(config, compiled, on_alert=seen.append)
    try:
        deadline = time.monotonic() + 30
        consumed = 0
        while consumed < len(events) + 1 + len(bad) and time.monotonic() < deadline:
            consumed += service.run_once()
    finally:
        service.close()
    assert consumed == len(events) + 1 + len(bad)

    out = drain(kafka_bootstrap, alerts, 1)
    assert len(out) == 1
    alert = orjson.loads(out[0].value() or b"")
    assert out[0].key() == b"c1"
    assert alert["rule"] == "card_testing"
    assert alert["key"] == "c1"
    assert alert["fields"] == {"tests": 3, "amount": 900.0, "merchant": "shop"}
    assert [e["stage"] for e in alert["events"]] == ["small", "small", "small", "big"]
    assert seen and seen[0]["id"] == alert["id"]

    dead = drain(kafka_bootstrap, dlq, len(bad))
    reasons = [dict(m.headers() or [])["cep.error"].decode() for m in dead]
    assert len(dead) == len(bad)
    assert reasons[0].startswith("invalid JSON")
    assert "amount" in reasons[1] and "card_id" in reasons[2] and "exceeds the limit" in reasons[3]
    headers = dict(dead[3].headers() or [])
    assert headers["cep.source.topic"] == inp.encode() and headers["cep.truncated"] == b"true"
    assert len(dead[3].value() or b"") == 65_536  # a truncated copy

    late_out = drain(kafka_bootstrap, late, 1)
    assert len(late_out) == 1
    assert orjson.loads(late_out[0].value() or b"")["ts"] == 1_767_225_600_000 + 60_000
