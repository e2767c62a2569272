"""Crash: `cep run` killed with SIGKILL at random points of a stream 10 times and restarted;
afterwards its alerts equal a failure-free run's, and every duplicate carries its original id."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest
import yaml
from confluent_kafka import Consumer, Producer, TopicPartition
from support import drain, service_config
from test_http import free_port, get

from cep.loader import compile_paths
from service.app import Service
from service.embedded import consumer_defaults, create_topics, producer_defaults

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
EVENTS = 1200


def stream(seed: int) -> list[tuple[str, dict[str, object]]]:
    """Card testing on a few cards among ordinary transactions, in time order."""
    rng = random.Random(seed)
    out = []
    for i in range(EVENTS):
        card = f"c{rng.randrange(20)}"
        amount = (
            rng.choice([1.0, 2.0, 3.0, 4.0]) if rng.random() < 0.6 else rng.choice([20.0, 900.0])
        )
        out.append((card, {"card_id": card, "amount": amount, "ts": T0 + i * 1000}))
    return out


def committed_total(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, **consumer_defaults()})
    try:
        found = consumer.committed(
            [TopicPartition(topic, p) for p in range(partitions)], timeout=10
        )
        return sum(max(tp.offset, 0) for tp in found)
    finally:
        consumer.close()


def test_sigkill_ten_times_loses_nothing(
    kafka_bootstrap: str, redis_url: str, topic_name: str, tmp_path: Path
) -> None:
    inp, expected_topic, crashed_topic = (
        f"{topic_name}-in",
        f"{topic_name}-ok",
        f"{topic_name}-crashed",
    )
    create_topics(kafka_bootstrap, {inp: 2, expected_topic: 1, crashed_topic: 1})
    events = stream(3)
    port = free_port()
    # The crashing daemon runs while the input is still being produced.
    (tmp_path / "crash").mkdir()
    (tmp_path / "crash" / "r.cep").write_text(RULES.replace("ALERTS", crashed_topic))
    config = {
        "kafka": {
            "bootstrap": kafka_bootstrap,
            "group_id": f"crash-{topic_name}",
            "consumer": consumer_defaults(),
            "producer": producer_defaults(),
        },
        "redis_url": redis_url,
        "rules": [str(tmp_path / "crash")],
        "engine": "numba",
        "inputs": [{"topic": inp, "stream": "txns"}],
        "http": {"port": port},
        "checkpoint_interval_ms": 100,
        "batch": {"max_messages": 50, "max_wait_ms": 20},
    }
    config_file = tmp_path / "service.yaml"
    config_file.write_text(yaml.safe_dump(config))

    def produce() -> None:
        producer = Producer({"bootstrap.servers": kafka_bootstrap, **producer_defaults()})
        for card, event in events:
            producer.produce(inp, orjson.dumps(event), card.encode())
            producer.poll(0)
            time.sleep(0.012)
        producer.flush(10)

    feeder = threading.Thread(target=produce)
    feeder.start()
    rng = random.Random(7)
    command = [sys.executable, "-m", "service.cli", "run", "--config", str(config_file)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for _ in range(10):
        daemon = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(3.0, 6.0))
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(10)
    feeder.join()
    daemon = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 90
    # Up and running (the signal handlers are in place) before anything is judged: the
    # killed runs may already have committed everything.
    while get(port, "/readyz", token=None)[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    while (
        committed_total(kafka_bootstrap, f"crash-{topic_name}", inp, 2) < EVENTS
        and time.monotonic() < deadline
    ):
        time.sleep(1)
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(30) == 0
    assert committed_total(kafka_bootstrap, f"crash-{topic_name}", inp, 2) == EVENTS

    # The failure-free run: the same input, one uninterrupted in-process service.
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "r.cep").write_text(RULES.replace("ALERTS", expected_topic))
    clean = Service(
        service_config(
            kafka_bootstrap,
            redis_url,
            f"ok-{topic_name}",
            engine="numba",
            inputs=[{"topic": inp, "stream": "txns"}],
        ),
        compile_paths([tmp_path / "ok"]),
    )
    consumed, deadline = 0, time.monotonic() + 60
    while consumed < EVENTS and time.monotonic() < deadline:
        consumed += clean.run_once()
    clean.close()
    expected = [
        orjson.loads(m.value() or b"")
        for m in drain(kafka_bootstrap, expected_topic, 10_000, timeout=15)
    ]
    crashed = [
        orjson.loads(m.value() or b"")
        for m in drain(kafka_bootstrap, crashed_topic, 10_000, timeout=15)
    ]
    assert expected, "the stream must produce alerts"
    by_id = {a["id"]: a for a in expected}
    assert {a["id"] for a in crashed} == set(by_id)  # nothing lost, nothing invented
    for alert in crashed:  # a duplicate is the same alert, with the same id
        assert alert["events"] == by_id[alert["id"]]["events"]
