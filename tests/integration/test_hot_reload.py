"""Rules deployed while running, against the real broker and Redis: a rule changed on disk
takes effect without a restart (its old partial matches dropped and counted, its alerts
carrying the new version); a broken rule is rejected and the old version keeps running."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import orjson
import pytest
import redis
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from support import service_config
from test_http import free_port, get, produce, samples, wait_for

from service.embedded import consumer_defaults, create_topics
from service.runner import serve

pytestmark = pytest.mark.integration
RULE = """
stream txns key card_id time ts out_of_order 0s
  fields { card_id: string, amount: float, ts: timestamp }
rule card_testing
  version VERSION
  from txns
  pattern small{3,} consecutive next big
  where small: amount < 5.00
        big: amount > BIG
  within 10m skip past last
  emit to "ALERTS" { tests: count(small) }
"""


def test_a_rule_changed_on_disk_takes_effect_and_a_broken_one_is_rejected(
    kafka_bootstrap: str, redis_url: str, topic_name: str, tmp_path: Path
) -> None:
    inp, alerts = f"{topic_name}-in", f"{topic_name}-alerts"
    create_topics(kafka_bootstrap, {inp: 1, alerts: 1})
    rule_file = tmp_path / "rules" / "card.cep"
    rule_file.parent.mkdir()

    def write(version: int, big: str) -> None:
        text = RULE.replace("ALERTS", alerts).replace("VERSION", str(version))
        rule_file.write_text(text.replace("BIG", big))

    write(1, "500.00")
    port, group = free_port(), f"cep-{topic_name}"
    config = service_config(
        kafka_bootstrap,
        redis_url,
        group,
        engine="numba",
        rules=[str(rule_file.parent)],
        inputs=[{"topic": inp, "stream": "txns"}],
        http={"port": port},
        checkpoint_interval_ms=200,
        rules_watch_interval_ms=200,
    )
    stop, result = threading.Event(), {}
    thread = threading.Thread(target=lambda: result.update(code=serve(config, stop)))
    thread.start()

    def deployments() -> dict[str, object]:
        status, body = get(port, "/deployments", token=None)
        return json.loads(body) if status == 200 else {}

    def last_outcome() -> object:
        attempt = deployments().get("last_attempt")
        return attempt.get("outcome") if isinstance(attempt, dict) else None

    reader = Consumer(
        {"bootstrap.servers": kafka_bootstrap, "group.id": f"{group}-reader", **consumer_defaults()}
    )
    reader.assign([TopicPartition(alerts, 0, OFFSET_BEGINNING)])
    seen: list[tuple[str, int]] = []

    def alert_versions() -> list[tuple[str, int]]:
        for message in reader.consume(100, 0.2):
            if message.error() is None:
                document = orjson.loads(message.value() or b"{}")
                seen.append((document["key"], document["version"]))
        return seen

    events_in = ("cep_events_in_total", (("stream", "txns"),))
    try:
        wait_for(lambda: get(port, "/readyz", token=None)[0] == 200)
        # c1 alerts under version 1; c2 leaves two partial matches (one per small event)
        produce(kafka_bootstrap, inp, [("c1", a, i) for i, a in enumerate([1.0, 2.0, 3.0, 900.0])])
        produce(kafka_bootstrap, inp, [("c2", 1.0, 5), ("c2", 2.0, 6)])
        wait_for(lambda: samples(port).get(events_in) == 6)
        wait_for(lambda: alert_versions() == [("c1", 1)])
        assert deployments()["watching"] is True
        assert deployments()["last_attempt"] is None

        write(2, "100.00")  # what it matches changes: a new version
        wait_for(lambda: last_outcome() == "changed")
        status, body = get(port, "/rules", token=None)
        assert status == 200
        assert [(r["name"], r["version"]) for r in json.loads(body)["rules"]] == [
            ("card_testing", 2)
        ]
        dropped = ("cep_reload_dropped_partial_matches_total", (("rule", "card_testing"),))
        values = samples(port)
        assert values[dropped] == 2  # c2's partial matches went with version 1
        assert values[("cep_rule_reloads_total", ())] == 1
        # 200 alerts under version 2 only; c2's earlier small events no longer count
        produce(
            kafka_bootstrap, inp, [("c3", a, 10 + i) for i, a in enumerate([1.0, 2.0, 3.0, 200.0])]
        )
        produce(kafka_bootstrap, inp, [("c2", 3.0, 20), ("c2", 300.0, 21)])
        wait_for(lambda: samples(port).get(events_in) == 12)
        wait_for(lambda: alert_versions() == [("c1", 1), ("c3", 2)])

        rule_file.write_text(rule_file.read_text().replace("amount > 100.00", "amount >> 1"))
        wait_for(lambda: last_outcome() == "rejected")
        attempt = deployments()["last_attempt"]
        assert isinstance(attempt, dict)
        assert "card.cep:9:" in attempt["diagnostics"] and "^" in attempt["diagnostics"]
        assert samples(port)[("cep_rule_reload_failures_total", ())] == 1
        # version 2 keeps running
        produce(
            kafka_bootstrap, inp, [("c4", a, 30 + i) for i, a in enumerate([1.0, 2.0, 3.0, 150.0])]
        )
        wait_for(lambda: alert_versions() == [("c1", 1), ("c3", 2), ("c4", 2)])
    finally:
        reader.close()
        stop.set()
        thread.join(60)
    assert result == {"code": 0}
    client = redis.Redis.from_url(redis_url)
    audit = [orjson.loads(r) for r in client.lrange(f"cep:{group}:deployments", 0, -1)]
    assert [(a["outcome"], a["rule"]) for a in audit] == [
        ("rejected", None),
        ("changed", "card_testing"),
    ]
    assert (audit[1]["old_version"], audit[1]["new_version"]) == (1, 2)
