"""The operations HTTP server of a running daemon: health, readiness, rules, metrics and the
live partial matches of one key, against the real broker and Redis."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families
from support import service_config

from service.embedded import consumer_defaults, create_topics, producer_defaults
from service.runner import serve

pytestmark = pytest.mark.integration
T0 = 1_767_225_600_000
TOKEN = "s3cret-token"
RULES = """
stream txns key card_id time ts out_of_order 0s
  fields { card_id: string, amount: float, ts: timestamp }
rule card_testing
  from txns
  pattern small{3,} consecutive next big
  where small: amount < 5.00
        big: amount > 500.00
  within 10m skip past last
  emit to "ALERTS" { tests: count(small), total: sum(small.amount), card: small.card_id }
"""
# The product engine keeps only the fields a rule's outputs read (nfa.kernel_layout): the
# outputs above read amount and card_id, so the partial matches show both.


def produce(bootstrap: str, topic: str, events: list[tuple[str, float, int]]) -> None:
    """(card, amount, minute) tuples, in order."""
    producer = Producer({"bootstrap.servers": bootstrap, **producer_defaults()})
    for card, amount, minute in events:
        value = {"card_id": card, "amount": amount, "ts": T0 + minute * 60_000}
        producer.produce(topic, orjson.dumps(value), card.encode())
    producer.flush(10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(port: int, path: str, token: str | None = TOKEN) -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""  # not listening yet


def wait_for(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def samples(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, text = get(port, "/metrics")
    assert status == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_http_endpoints_of_a_running_service(
    kafka_bootstrap: str, redis_url: str, topic_name: str, tmp_path: Path
) -> None:
    inp, alerts = f"{topic_name}-in", f"{topic_name}-alerts"
    create_topics(kafka_bootstrap, {inp: 1, alerts: 1})
    (tmp_path / "r.cep").write_text(RULES.replace("ALERTS", alerts))
    events = [("c9", a, i) for i, a in enumerate([1.0, 2.0, 3.0, 900.0])]  # an alert
    events += [("card-0042", a, 10 + i) for i, a in enumerate([1.0, 2.0])]  # pending
    produce(kafka_bootstrap, inp, events)

    port = free_port()
    config = service_config(
        kafka_bootstrap,
        redis_url,
        f"cep-{topic_name}",
        engine="numba",
        rules=[str(tmp_path)],
        inputs=[{"topic": inp, "stream": "txns"}],
        http={"port": port, "token": TOKEN},
        sensitive_fields={"txns": ["card_id"]},
        checkpoint_interval_ms=200,
    )
    stop, result = threading.Event(), {}

    def run() -> None:
        result["code"] = serve(config, stop)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        wait_for(lambda: get(port, "/healthz", token=None)[0] == 200)
        assert get(port, "/readyz", token=None)[0] == 401
        wait_for(lambda: get(port, "/readyz")[0] == 200)
        events_in = ("cep_events_in_total", (("stream", "txns"),))
        wait_for(lambda: samples(port).get(events_in) == len(events))

        status, body = get(port, "/readyz")
        assert status == 200 and json.loads(body)["partitions"] == [0]
        status, body = get(port, "/rules")
        (rule,) = json.loads(body)["rules"]
        assert status == 200 and rule["name"] == "card_testing" and rule["version"] == 1
        assert rule["enabled"] is True and rule["shadow"] is False and rule["cooldown"] is None

        status, body = get(port, "/rules/card_testing/keys/card-0042/partial-matches")
        document: dict[str, Any] = json.loads(body)
        assert status == 200 and document["key"] == "****0042"
        longest = max(document["partial_matches"], key=lambda m: len(m["events"]))
        assert longest["start"] == T0 + 10 * 60_000 and longest["state"]
        assert [e["fields"]["amount"] for e in longest["events"]] == [1.0, 2.0]
        assert {e["fields"]["card_id"] for e in longest["events"]} == {"****0042"}
        assert [e["id"] for e in longest["events"]] == [f"{inp}/0/4", f"{inp}/0/5"]
        assert "card-0042" not in body
        status, body = get(port, "/rules/nope/keys/k/partial-matches")
        assert status == 404

        values = samples(port)
        assert values[("cep_partial_matches", (("rule", "card_testing"),))] >= 1
        assert values[("cep_alerts_total", (("rule", "card_testing"),))] == 1
        assert values[("cep_alert_latency_seconds_count", ())] == 1
        assert values[("cep_decode_failures_total", (("stream", "txns"),))] == 0
        lag = values[("cep_watermark_lag_seconds", (("partition", "0"), ("stream", "txns")))]
        assert lag > 0
        # The embedded broker's log-end answers are not exact: only check the gauge's shape.
        consumer_lag = [v for (name, _), v in values.items() if name == "cep_consumer_lag"]
        assert all(v >= 0 for v in consumer_lag)
        checkpoints = ("cep_checkpoint_seconds_count", ())
        wait_for(lambda: samples(port).get(checkpoints, 0) >= 1)
    finally:
        stop.set()
        thread.join(60)
    assert result == {"code": 0}
    assert get(port, "/healthz", token=None)[0] == 0  # the server is closed


def test_sigterm_commits_and_exits_0_with_env_config_and_json_logs(
    kafka_bootstrap: str, redis_url: str, topic_name: str, tmp_path: Path
) -> None:
    """`cep run` as a process: the config file names a wrong broker and Redis, the
    environment fixes them; SIGTERM after the input is read commits its offsets."""
    inp, alerts = f"{topic_name}-in", f"{topic_name}-alerts"
    create_topics(kafka_bootstrap, {inp: 1, alerts: 1})
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.cep").write_text(RULES.replace("ALERTS", alerts))
    produce(kafka_bootstrap, inp, [("c1", 1.0, 0), ("c1", 2.0, 1), ("c2", 3.0, 2)])
    group, port = f"cep-{topic_name}", free_port()
    config = {
        "kafka": {
            "bootstrap": "nowhere:9092",
            "group_id": group,
            "consumer": consumer_defaults(),
            "producer": producer_defaults(),
        },
        "redis_url": "redis://nowhere:6379/0",
        "rules": [str(tmp_path / "rules")],
        "inputs": [{"topic": inp, "stream": "txns"}],
        "engine": "reference",
        "checkpoint_interval_ms": 60_000,  # only the shutdown commits
        "sensitive_fields": {"txns": ["card_id"]},
    }
    (tmp_path / "service.yaml").write_text(yaml.safe_dump(config))
    env = {
        **os.environ,
        "CEP__KAFKA__BOOTSTRAP": kafka_bootstrap,
        "CEP__REDIS_URL": redis_url,
        "CEP__HTTP__PORT": str(port),
        "CEP__LOG__FORMAT": "json",
    }
    command = [sys.executable, "-m", "service.cli", "run", "--config", "service.yaml"]
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        events_in = ("cep_events_in_total", (("stream", "txns"),))
        wait_for(lambda: get(port, "/readyz", token=None)[0] == 200)
        wait_for(lambda: samples(port).get(events_in) == 3)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=40)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    messages = [line["message"] for line in lines]
    assert any(m.startswith("stopping") for m in messages) and messages[-1].startswith("stopped")
    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group})
    try:
        (committed,) = consumer.committed([TopicPartition(inp, 0)], timeout=10)
    finally:
        consumer.close()
    assert committed.offset == 3
