"""A SQL rule in the daemon: rule file -> Kafka in -> mixed engine -> alert topic."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, Producer

from cep.loader import compile_paths
from nfa.rowpattern_jit import kernel_supported
from service.app import Service
from service.config import KafkaConfig, ServiceConfig, config_from_mapping
from service.embedded import consumer_defaults, create_topics, producer_defaults

pytestmark = pytest.mark.integration

STREAMS = """
stream txns key card_id time ts out_of_order 0s
  fields { card_id: string, amount: float, ts: timestamp }

rule big_dsl
  from txns
  pattern big
  where big: amount > 5000
  emit to "ALERTS" { amount: big.amount }
"""
SQL = """
-- rule: sql_card_testing
-- severity: high
-- emit_to: ALERTS
SELECT * FROM txns MATCH_RECOGNIZE (
  PARTITION BY card_id ORDER BY ts
  MEASURES count(S.*) AS tests, B.amount AS amount
  PATTERN (S{3,} B) WITHIN INTERVAL '10' MINUTE
  DEFINE S AS S.amount < 5.00, B AS B.amount > 500.00
);

-- rule: sql_overlap
-- emit_to: ALERTS
SELECT * FROM txns MATCH_RECOGNIZE (
  PARTITION BY card_id ORDER BY ts
  MEASURES count(S.*) AS tests, CLASSIFIER() AS last_kind
  PATTERN (S{3,} (B | C)) WITHIN INTERVAL '10' MINUTE
  DEFINE S AS S.amount < 5.00, B AS B.amount > 500.00, C AS C.amount > 400.00
);
"""


@pytest.mark.parametrize("engine", ["numba", "reference"])
def test_sql_rule_alerts_through_the_daemon(
    kafka_bootstrap: str, redis_url: str, topic_name: str, tmp_path: Path, engine: str
) -> None:
    """`sql_card_testing` is in the NFA subset; `sql_overlap` (B and C overlap) is not: with
    the numba engine it runs on the row-pattern kernels, with reference in Python."""
    inp, alerts = f"{topic_name}-in", f"{topic_name}-alerts"
    create_topics(kafka_bootstrap, {inp: 1, alerts: 1})
    (tmp_path / "streams.cep").write_text(STREAMS.replace("ALERTS", alerts))
    (tmp_path / "card.sql").write_text(SQL.replace("ALERTS", alerts))
    compiled = compile_paths([tmp_path])
    (overlap,) = compiled.sql_programs
    assert overlap.info.name == "sql_overlap" and kernel_supported(overlap)
    base = config_from_mapping(
        {"inputs": [{"topic": inp, "stream": "txns"}], "redis_url": redis_url, "engine": engine}
    )
    kafka = KafkaConfig(
        kafka_bootstrap, f"cep-{topic_name}", consumer_defaults(), producer_defaults()
    )
    config = ServiceConfig(**{**base.__dict__, "kafka": kafka})
    producer = Producer({"bootstrap.servers": kafka_bootstrap, **producer_defaults()})
    events = [("c1", 1.0, 0), ("c1", 2.0, 1), ("c1", 3.0, 2), ("c1", 900.0, 3), ("c1", 9e3, 4)]
    for card, amount, minute in events:
        value = {"card_id": card, "amount": amount, "ts": 1_767_225_600_000 + minute * 60_000}
        producer.produce(inp, orjson.dumps(value), card.encode())
    producer.flush(10)
    seen: list[dict[str, object]] = []
    service = Service(config, compiled, on_alert=seen.append)
    try:
        deadline = time.monotonic() + 30
        consumed = 0
        while consumed < len(events) and time.monotonic() < deadline:
            consumed += service.run_once()
        service.checkpoint()
        sql_engine = service.partitions[0].engine.sql
        assert (sql_engine.fast is not None) == (engine == "numba")
    finally:
        service.close()
    by_rule = {str(a["rule"]): a for a in seen}
    assert set(by_rule) == {"sql_card_testing", "sql_overlap", "big_dsl"}
    sql = by_rule["sql_card_testing"]
    assert sql["fields"] == {"tests": 3, "amount": 900.0} and sql["severity"] == "high"
    assert by_rule["sql_overlap"]["fields"] == {"tests": 3, "last_kind": "B"}
    reader = Consumer(
        {"bootstrap.servers": kafka_bootstrap, "group.id": f"r-{topic_name}", **consumer_defaults()}
    )
    reader.subscribe([alerts])
    found: list[bytes] = []
    deadline = time.monotonic() + 20
    while len(found) < 3 and time.monotonic() < deadline:
        message = reader.poll(0.2)
        if message is not None and message.error() is None:
            found.append(message.value() or b"")
    reader.close()
    rules = sorted(orjson.loads(v)["rule"] for v in found)
    assert rules == ["big_dsl", "sql_card_testing", "sql_overlap"]
