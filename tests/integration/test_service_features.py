"""Daemon features against the real broker and Redis: exactly-once, cooldown, shadow mode,
metrics, and scale-out across instances of one consumer group."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer
from prometheus_client import CollectorRegistry
from support import drain, service_config

from cep.loader import compile_paths
from service.app import Service
from service.embedded import create_topics, producer_defaults

pytestmark = pytest.mark.integration
T0 = 1_767_225_600_000
RULES = """
stream txns key card_id time ts out_of_order 0s
  fields { card_id: string, amount: float, ts: timestamp }
rule card_testing
  from txns
  pattern small{3,} consecutive next big
  where small: amount < 5.00
        big: amount > 500.00
  within 10m skip past last
  emit to "ALERTS" { tests: count(small) }
rule big_spend
  from txns
  pattern big
  where big: amount > 5000.00
  emit to "ALERTS" { amount: big.amount }
"""
TESTING = [1.0, 2.0, 3.0, 900.0]


def produce(bootstrap: str, topic: str, events: list[tuple[str, float, int, int]]) -> None:
    """(card, amount, minute, partition) tuples, in order."""
    producer = Producer({"bootstrap.servers": bootstrap, **producer_defaults()})
    for card, amount, minute, partition in events:
        value = {"card_id": card, "amount": amount, "ts": T0 + minute * 60_000}
        producer.produce(topic, orjson.dumps(value), card.encode(), partition=partition)
    producer.flush(10)


def run_all(services: list[Service], expected: int, timeout: float = 40.0) -> None:
    total, deadline = 0, time.monotonic() + timeout
    while total < expected and time.monotonic() < deadline:
        for service in services:
            total += service.run_once()
    assert total == expected


def setup(kafka: str, name: str, tmp_path: Path, partitions: int = 1) -> tuple[str, str]:
    inp, alerts = f"{name}-in", f"{name}-alerts"
    create_topics(kafka, {inp: partitions, alerts: 1, f"{name}-shadow": 1})
    (tmp_path / "r.cep").write_text(RULES.replace("ALERTS", alerts))
    return inp, alerts


def test_exactly_once_commits_outputs_and_offsets_together(
    kafka_bootstrap: str, redis_url: str, topic_name: str, tmp_path: Path
) -> None:
    inp, alerts = setup(kafka_bootstrap, topic_name, tmp_path)
    config = service_config(
        kafka_bootstrap,
        redis_url,
        f"cep-{topic_name}",
        guarantee="exactly_once",
        engine="numba",
        inputs=[{"topic": inp, "stream": "txns"}],
        checkpoint_interval_ms=0,
        instance_id="a",
    )
    produce(kafka_bootstrap, inp, [("c1", a, i, 0) for i, a in enumerate(TESTING)])
    rules = compile_paths([tmp_path])
    first = Service(config, rules)
    run_all([first], 4)
    first.close()
    written = drain(kafka_bootstrap, alerts, 1, **{"isolation.level": "read_committed"})
    assert [orjson.loads(m.value() or b"")["rule"] for m in written] == ["card_testing"]
    # The offsets went to Kafka inside the transaction: a restart (same transactional id,
    # fencing the old producer) starts after them.
    produce(kafka_bootstrap, inp, [("c1", 9000.0, 5, 0)])
    second = Service(config, rules)
    run_all([second], 1)
    second.close()
    assert len(drain(kafka_bootstrap, alerts, 2, **{"isolation.level": "read_committed"})) == 2


def test_cooldown_suppresses_and_shadow_redirects(
    kafka_bootstrap: str, redis_url: str, topic_name: str, tmp_path: Path
) -> None:
    inp, alerts = setup(kafka_bootstrap, topic_name, tmp_path)
    config = service_config(
        kafka_bootstrap,
        redis_url,
        f"cep-{topic_name}",
        inputs=[{"topic": inp, "stream": "txns"}],
        shadow_topic=f"{topic_name}-shadow",
        rule_settings={"card_testing": {"cooldown": "1h"}, "big_spend": {"shadow": True}},
    )
    twice = [("c1", a, i, 0) for i, a in enumerate(TESTING + TESTING)] + [("c1", 9000.0, 20, 0)]
    produce(kafka_bootstrap, inp, twice)
    registry = CollectorRegistry()
    service = Service(config, compile_paths([tmp_path]), registry=registry)
    run_all([service], len(twice))
    service.close()
    assert len(drain(kafka_bootstrap, alerts, 2, timeout=10)) == 1  # the repeat was suppressed
    shadow = drain(kafka_bootstrap, f"{topic_name}-shadow", 1)
    assert [orjson.loads(m.value() or b"")["rule"] for m in shadow] == ["big_spend"]
    assert registry.get_sample_value("cep_alerts_suppressed_total", {"rule": "card_testing"}) == 1
    assert registry.get_sample_value("cep_alerts_total", {"rule": "card_testing"}) == 1
    assert registry.get_sample_value("cep_events_in_total", {"stream": "txns"}) == len(twice)


def test_instances_split_partitions_and_each_restores_its_own(
    kafka_bootstrap: str, redis_url: str, topic_name: str, tmp_path: Path
) -> None:
    inp, alerts = setup(kafka_bootstrap, topic_name, tmp_path, partitions=2)
    config = service_config(
        kafka_bootstrap,
        redis_url,
        f"cep-{topic_name}",
        inputs=[{"topic": inp, "stream": "txns"}],
        checkpoint_interval_ms=0,
    )
    rules = compile_paths([tmp_path])
    # Partial matches on both partitions, held by one instance and checkpointed.
    produce(
        kafka_bootstrap,
        inp,
        [(c, a, i, p) for i, a in enumerate(TESTING[:3]) for c, p in (("c0", 0), ("c1", 1))],
    )
    alone = Service(config, rules)
    run_all([alone], 6)
    alone.close()
    # Two instances share the group: each gets one partition and restores its state.
    one, two = Service(config, rules), Service(config, rules)
    produce(kafka_bootstrap, inp, [("c0", 900.0, 3, 0), ("c1", 900.0, 3, 1)])
    run_all([one, two], 2, timeout=60)
    owned = [sorted(s.partitions) for s in (one, two)]
    one.close()
    two.close()
    assert sorted(p for o in owned for p in o) == [0, 1] and all(len(o) == 1 for o in owned)
    keys = sorted(orjson.loads(m.value() or b"")["key"] for m in drain(kafka_bootstrap, alerts, 2))
    assert keys == ["c0", "c1"]


def test_an_instance_joins_and_leaves_mid_stream(
    kafka_bootstrap: str, redis_url: str, topic_name: str, tmp_path: Path
) -> None:
    inp, alerts = setup(kafka_bootstrap, topic_name, tmp_path, partitions=2)
    config = service_config(
        kafka_bootstrap,
        redis_url,
        f"cep-{topic_name}",
        inputs=[{"topic": inp, "stream": "txns"}],
        checkpoint_interval_ms=0,
    )
    rules = compile_paths([tmp_path])
    cards = (("c0", 0), ("c1", 1))
    seen: list[dict[str, object]] = []
    first = Service(config, rules, on_alert=seen.append)
    produce(
        kafka_bootstrap,
        inp,
        [(c, a, i, p) for i, a in enumerate([1.0, 2.0, 3.0]) for c, p in cards],
    )
    run_all([first], 6)
    # A second instance joins: the partitions are split and each restores its share.
    second = Service(config, rules, on_alert=seen.append)
    deadline = time.monotonic() + 30
    while (
        not (len(first.partitions) == 1 and len(second.partitions) == 1)
        and time.monotonic() < deadline
    ):
        first.run_once()
        second.run_once()
    assert sorted([*first.partitions, *second.partitions]) == [0, 1]
    produce(kafka_bootstrap, inp, [(c, 4.0, 3, p) for c, p in cards])
    run_all([first, second], 2)
    # It leaves again: its partition, with the state it built, moves back.
    second.close()
    deadline = time.monotonic() + 30
    while len(first.partitions) < 2 and time.monotonic() < deadline:
        first.run_once()
    produce(kafka_bootstrap, inp, [(c, 900.0, 4, p) for c, p in cards])
    run_all([first], 2)
    first.close()
    assert sorted((a["key"], a["fields"]["tests"]) for a in seen) == [("c0", 4), ("c1", 4)]  # type: ignore[index]
    assert len(drain(kafka_bootstrap, alerts, 2)) == 2
