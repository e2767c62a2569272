"""The synthetic generator: deterministic for a seed, ordered, labelled, shaped by the schema."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from cep.loader import compile_paths
from service.generator import Generator, main
from service.scenarios import SCENARIOS

LIBRARY = Path(__file__).resolve().parents[2] / "patterns"


def _run(**kwargs: Any) -> tuple[list[tuple[str, dict[str, Any]]], Generator]:
    generator = Generator(**{"seed": 3, "rate": 50.0, "fraud_ratio": 0.01, **kwargs})
    return list(generator.events(5000)), generator


def test_same_seed_same_events_and_labels() -> None:
    first, g1 = _run()
    second, g2 = _run()
    assert first == second
    assert g1.labels == g2.labels and g1.labels


def test_another_seed_other_events() -> None:
    first, _ = _run()
    other, _ = _run(seed=4)
    assert first != other


def test_events_come_in_event_time_order_by_default() -> None:
    events, _ = _run()
    stamps = [e["ts"] for _, e in events]
    assert stamps == sorted(stamps)
    assert len(events) == 5000


def test_disorder_is_bounded_and_late_events_are_recorded() -> None:
    events, generator = _run(disorder_ms=5000, late_ratio=0.01)
    late = set(generator.late_event_ids)
    assert late
    high = 0
    for _, event in events:
        if event["event_id"] in late:
            continue
        assert event["ts"] > high - 5000 - 1, "an on-time event arrived more than 5 s behind"
        high = max(high, int(event["ts"]))
    assert [e["ts"] for _, e in events] != sorted(e["ts"] for _, e in events)


def test_every_event_fits_its_stream_schema_and_has_a_unique_id() -> None:
    schema = compile_paths([LIBRARY]).schema
    fields = {s.name: {f for f, _ in s.fields} for s in schema.streams}
    events, _ = _run()
    ids = [e["event_id"] for _, e in events]
    assert len(ids) == len(set(ids))
    for stream, event in events:
        assert set(event) <= fields[stream], (stream, set(event) - fields[stream])
        key = next(s.key for s in schema.streams if s.name == stream)
        assert event[key]
    assert {s for s, _ in events} == set(fields)


def test_labels_name_produced_events_of_their_key() -> None:
    events, generator = _run()
    by_id = {e["event_id"]: (s, e) for s, e in events}
    for label in generator.labels:
        assert label.scenario in SCENARIOS
        assert all(i in by_id for i in label.event_ids), "label names only produced events"
        assert any(label.key in e.values() for _, e in (by_id[i] for i in label.event_ids))
        assert label.time >= max(int(by_id[i][1]["ts"]) for i in label.event_ids)


def test_every_scenario_is_injected() -> None:
    generator = Generator(seed=5, rate=20.0, fraud_ratio=0.05, duration_s=1800)
    list(generator.events())
    assert set(Counter(label.scenario for label in generator.labels)) == set(SCENARIOS)


def test_duration_bounds_the_run() -> None:
    generator = Generator(seed=5, rate=20.0, duration_s=60)
    events = list(generator.events())
    assert events
    last_start = generator.start_ms + 60_000
    assert all(int(e["ts"]) < last_start + 3_600_000 for _, e in events)
    assert sum(1 for _, e in events if int(e["ts"]) < last_start) > 0.9 * len(events)


def test_demo_compatible_constructor() -> None:
    generator = Generator(rate=100.0, start_ms=1_767_225_600_000, fraud_ratio=0.003)
    txns = [e for s, e in generator.events(200) if s == "txns"]
    assert txns and all(isinstance(e["card_id"], str) for e in txns)


def test_cli_writes_events_and_labels(tmp_path: Path) -> None:
    out, labels = tmp_path / "events.jsonl", tmp_path / "labels.jsonl"
    code = main(
        [
            "--events",
            "3000",
            "--seed",
            "9",
            "--fraud-ratio",
            "0.02",
            "--out",
            str(out),
            "--labels",
            str(labels),
        ]
    )
    assert code == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 3000 and all("stream" in x and "event_id" in x for x in lines)
    written = [json.loads(line) for line in labels.read_text().splitlines()]
    assert written and {"scenario", "rule", "key", "event_ids", "time"} <= set(written[0])


def test_unknown_scenario_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown scenario"):
        list(Generator(scenarios=("no_such_rule",)).events(10))
