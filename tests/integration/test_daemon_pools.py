"""The daemon compacts its pools at checkpoints, and a restart continues from the result.

A rule joins on a reference unique per case while noise events carry references of their
own, all interned because the rule reads the field. The first instance consumes the
openings and the noise, checkpoints (compacting: the noise references are freed, the open
ones are kept by the partial matches) and stops; a second one restores that checkpoint and
receives the closing events, which must match the references opened before the restart.
"""

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

RULES = """
stream cases key card time ts out_of_order 0s
  fields { card: string, ref: string, kind: string, ts: timestamp }

rule closed
  from cases
  pattern a followed by b
  where a: kind == "open"
        b: kind == "close" and ref == a.ref
  within 1h
  emit to "ALERTS" { ref: a.ref }
"""
T0 = 1_767_225_600_000
CARDS = 20


def _produce(bootstrap: str, topic: str, events: list[tuple[str, str, str, int]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, **producer_defaults()})
    for card, ref, kind, second in events:
        value = {"card": card, "ref": ref, "kind": kind, "ts": T0 + second * 1000}
        producer.produce(topic, orjson.dumps(value), card.encode())
    producer.flush(10)


def _consume(service: Service, count: int) -> None:
    deadline, consumed = time.monotonic() + 30, 0
    while consumed < count and time.monotonic() < deadline:
        consumed += service.run_once()
    assert consumed == count
    service.checkpoint()


def test_pools_compacted_at_checkpoints_survive_a_restart(
    kafka_bootstrap: str, redis_url: str, topic_name: str, tmp_path: Path
) -> None:
    inp, alerts = f"{topic_name}-in", f"{topic_name}-alerts"
    create_topics(kafka_bootstrap, {inp: 1, alerts: 1})
    rule_file = tmp_path / "rules.cep"
    rule_file.write_text(RULES.replace("ALERTS", alerts))
    compiled = compile_paths([rule_file])
    config = service_config(
        kafka_bootstrap,
        redis_url,
        f"cep-{topic_name}",
        inputs=[{"topic": inp, "stream": "cases"}],
        dead_letter_topic=f"{topic_name}-dlq",
        late_topic=f"{topic_name}-late",
        batch={"max_messages": 100, "max_wait_ms": 20},
        bounds={"compact_pools_at": 50},
        engine="numba",
    )

    opened = [(f"c{c}", f"open-{c}", "open", c) for c in range(CARDS)]
    noise = [(f"c{i % CARDS}", f"noise-{i}", "noise", 100 + i) for i in range(600)]
    _produce(kafka_bootstrap, inp, opened + noise)
    registry = CollectorRegistry()
    first = Service(config, compiled, registry=registry)
    try:
        _consume(first, len(opened) + len(noise))
        (state,) = first.partitions.values()
        released = registry.get_sample_value("cep_pool_released_total", {"pool": "strings"})
        assert released is not None and released >= 500  # the noise references went
        assert state.pool.live < 100 and state.pool.lookup("open-3") is not None
    finally:
        first.close()

    closing = [(f"c{c}", f"open-{c}", "close", 1000 + c) for c in range(CARDS)]
    _produce(kafka_bootstrap, inp, [*closing, ("c0", "noise-x", "noise", 2000)])
    seen: list[dict[str, object]] = []
    second = Service(config, compiled, registry=CollectorRegistry(), on_alert=seen.append)
    try:
        _consume(second, len(closing) + 1)
    finally:
        second.close()
    assert sorted(str(a["key"]) for a in seen) == sorted(f"c{c}" for c in range(CARDS))
    assert all(a["fields"] == {"ref": f"open-{str(a['key'])[1:]}"} for a in seen)
    assert len(drain(kafka_bootstrap, alerts, CARDS)) == CARDS
