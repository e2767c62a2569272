"""Recovery without loss: a partial match survives a restart and a crash, through Redis.

Kafka's committed offsets are the truth: the second instance restores the checkpoint that
covers them and resumes; after a crash between checkpoint and commit it replays the input
since the last commit and writes alerts with the same ids.
"""

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

RULES = """
stream txns key card_id time ts out_of_order 0s
  fields { card_id: string, amount: float, ts: timestamp }
rule card_testing
  from txns
  pattern small{3,} consecutive next big
  where small: amount < 5.00
        big: amount > 500.00
  within 10m skip past last
  emit to "ALERTS" { tests: count(small), total: sum(small.amount) }
"""
T0 = 1_767_225_600_000


def produce(bootstrap: str, topic: str, amounts: list[tuple[float, int]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, **producer_defaults()})
    for amount, minute in amounts:
        event = {"card_id": "c1", "amount": amount, "ts": T0 + minute * 60_000}
        producer.produce(topic, orjson.dumps(event), b"c1", partition=0)
    producer.flush(10)


def run_until(service: Service, consumed: int, timeout: float = 30.0) -> None:
    total, deadline = 0, time.monotonic() + timeout
    while total < consumed and time.monotonic() < deadline:
        total += service.run_once()
    assert total == consumed


@pytest.mark.parametrize("engine", ["reference", "numba"])
def test_partial_match_survives_restart_and_crash(
    kafka_bootstrap: str, redis_url: str, topic_name: str, tmp_path: Path, engine: str
) -> None:
    inp, alerts = f"{topic_name}-in", f"{topic_name}-alerts"
    create_topics(kafka_bootstrap, {inp: 1, alerts: 1})
    (tmp_path / "r.cep").write_text(RULES.replace("ALERTS", alerts))
    rules = compile_paths([tmp_path])
    config = service_config(
        kafka_bootstrap,
        redis_url,
        f"cep-{topic_name}",
        engine=engine,
        inputs=[{"topic": inp, "stream": "txns"}],
        checkpoint_interval_ms=0,
    )

    # 1. Three small transactions: a partial match, checkpointed and committed on close.
    produce(kafka_bootstrap, inp, [(1.0, 0), (2.0, 1), (3.0, 2)])
    first = Service(config, rules)
    run_until(first, 3)
    first.close()

    # 2. A restarted instance restores it: the large transaction completes the match.
    produce(kafka_bootstrap, inp, [(900.0, 3)])
    seen: list[dict[str, object]] = []
    second = Service(config, rules, on_alert=seen.append)
    run_until(second, 1)
    assert [a["fields"] for a in seen] == [{"tests": 3, "total": 6.0}]
    second.close()

    # 3. Crash after producing but before the next checkpoint: a replacement replays the
    #    same input from the last commit and writes the same alert id again.
    produce(kafka_bootstrap, inp, [(1.0, 4), (1.0, 5), (1.0, 6), (800.0, 7)])
    third = Service(
        service_config(
            kafka_bootstrap,
            redis_url,
            f"cep-{topic_name}",
            engine=engine,
            inputs=[{"topic": inp, "stream": "txns"}],
            checkpoint_interval_ms=3_600_000,
        ),
        rules,
        on_alert=seen.append,
    )
    run_until(third, 4)
    third.producer.flush(10)
    third.partitions.clear()  # a crash: the in-memory state is gone, nothing is committed
    third.consumer.close()
    fourth = Service(config, rules, on_alert=seen.append)
    run_until(fourth, 4)
    fourth.close()

    assert len(seen) == 3
    assert seen[1]["id"] == seen[2]["id"] != seen[0]["id"]
    written = [orjson.loads(m.value() or b"") for m in drain(kafka_bootstrap, alerts, 3)]
    assert [a["id"] for a in written] == [a["id"] for a in seen]
