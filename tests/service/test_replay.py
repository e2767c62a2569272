"""`cep replay`: files in, alerts and a per-rule report out, with the live watermark rules."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from service.generator import Generator, write_events
from service.replay import add_replay_arguments, compare, main_replay, replay
from service.replay_input import InputError

LIBRARY = Path(__file__).resolve().parents[2] / "patterns"

RULES = """
stream txns key card_id time ts out_of_order 30s
  fields { event_id: string, card_id: string, amount: float, ts: timestamp }
rule small_then_big from txns
  pattern small followed by big
  where small: amount < 5.0
        big:   amount > 500.0
  within 1h
  skip past last
"""


def _jsonl(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


def _txn(ident: str | None, card: str, amount: float, ts: str) -> dict[str, Any]:
    event: dict[str, Any] = {"stream": "txns", "card_id": card, "amount": amount}
    if ident is not None:
        event["event_id"] = ident
    return {**event, "ts": f"2026-01-01T{ts}Z"}


CARD_TESTING = [
    _txn("e1", "c1", 1.0, "10:00:00"),
    _txn("e2", "c1", 2.0, "10:01:00"),
    _txn("e3", "c1", 3.0, "10:02:00"),
    _txn("e4", "c1", 900.0, "10:03:00"),
]


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    path = tmp_path / "rules.cep"
    path.write_text(RULES)
    return path


def test_json_lines_alerts_with_event_ids(tmp_path: Path) -> None:
    events = _jsonl(tmp_path / "events.jsonl", CARD_TESTING)
    out = tmp_path / "alerts.jsonl"
    report = replay([LIBRARY], [events], engine="reference", out=out)
    assert report.events == 4 and report.rejected == 0
    written = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert written == report.alerts
    (alert,) = written
    assert alert["rule"] == "card_testing" and alert["key"] == "c1"
    assert [e["id"] for e in alert["events"]] == ["e1", "e2", "e3", "e4"]
    assert alert["fields"]["tests"] == 3
    assert report.rules["card_testing"].alerts == 1
    assert "card_testing" in report.summary()


def test_csv_input_converts_types_and_ids_default_to_file_line(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["stream", "card_id", "amount", "card_present", "ts"])
        for event in CARD_TESTING:
            writer.writerow(["txns", event["card_id"], str(event["amount"]), "true", event["ts"]])
        writer.writerow(["txns", "c9", "not-a-number", "true", "2026-01-01T10:04:00Z"])
    report = replay([LIBRARY], [path], engine="reference")
    (alert,) = report.alerts
    assert [e["id"] for e in alert["events"]] == [f"{path}:{n}" for n in (2, 3, 4, 5)]
    assert alert["fields"]["tested_total"] == pytest.approx(6.0)
    assert report.rejected == 1 and "amount" in report.rejected_samples[0]


def test_out_of_order_is_reordered_and_late_event_reported_not_matched(
    tmp_path: Path, rules: Path
) -> None:
    events = _jsonl(
        tmp_path / "events.jsonl",
        [
            _txn("big1", "c1", 900.0, "10:00:30"),
            _txn("small1", "c1", 1.0, "10:00:10"),  # 20 s behind: within the 30 s, reordered
            _txn("x", "c2", 100.0, "10:05:00"),  # watermark now 10:04:30
            _txn("late", "c3", 1.0, "10:01:00"),  # behind the watermark: late
            _txn("big3", "c3", 900.0, "10:06:00"),
        ],
    )
    report = replay([rules], [events], engine="reference")
    assert [[e["id"] for e in a["events"]] for a in report.alerts] == [["small1", "big1"]]
    assert report.late == {"txns": 1}
    assert "late events (not matched): txns 1" in report.summary()


def test_end_of_input_fires_an_absence(tmp_path: Path) -> None:
    auth = {"stream": "auths", "event_id": "a1", "card_id": "c1", "auth_id": "A1"}
    events = _jsonl(tmp_path / "e.jsonl", [{**auth, "amount": 300.0, "ts": 1_767_261_600_000}])
    report = replay([LIBRARY], [events], engine="reference")
    (alert,) = report.alerts
    assert alert["rule"] == "auth_unconfirmed"
    assert alert["time"] == 1_767_261_600_000 + 5 * 60_000
    assert [e["id"] for e in alert["events"]] == ["a1"]


def test_labels_give_exact_precision_recall_and_time_to_alert(tmp_path: Path, rules: Path) -> None:
    events = _jsonl(
        tmp_path / "events.jsonl",
        [
            _txn("e1", "c1", 1.0, "10:00:00"),
            _txn("e3", "c2", 1.0, "10:00:10"),
            _txn("e2", "c1", 900.0, "10:03:00"),
            _txn("e4", "c2", 900.0, "10:10:00"),
            _txn("e5", "c3", 1.0, "10:20:00"),
        ],
    )
    labels = _jsonl(
        tmp_path / "labels.jsonl",
        [
            {"scenario": "small_then_big", "key": "c1", "event_ids": ["e1", "e2"], "time": 0},
            {"rule": "small_then_big", "key": "c3", "event_ids": ["e5"]},
            {"scenario": "other_rule", "key": "c1"},
        ],
    )
    report = replay([rules], [events], engine="reference", labels=labels)
    score = report.rules["small_then_big"].score
    assert score is not None
    assert (score.alerts, score.true_alerts, score.labels, score.found) == (2, 1, 2, 1)
    assert score.precision == 0.5 and score.recall == 0.5
    assert score.time_to_alert_s == [180.0]  # from the first labelled event, e1
    summary = report.summary()
    assert "precision" in summary and "other_rule" in summary


def test_compare_lists_the_alert_only_the_new_version_finds(tmp_path: Path) -> None:
    rule = (LIBRARY / "card_testing.cep").read_text()
    old, new = tmp_path / "old.cep", tmp_path / "new.cep"
    old.write_text(rule)
    lowered = rule.replace("amount > 500.00", "amount > 300.00").replace("version 1", "version 2")
    new.write_text(lowered)
    c1 = [*CARD_TESTING[:3], _txn("e4", "c1", 400.0, "10:03:00")]  # big only for the new one
    c2 = [_txn(f"k{i}", "c2", e["amount"], f"11:0{i}:00") for i, e in enumerate(CARD_TESTING)]
    path = _jsonl(tmp_path / "events.jsonl", [*c1, *c2])
    result = compare(old, new, [path], base=[LIBRARY], engine="reference")
    assert result.only_old == []
    (only,) = result.only_new
    assert only["rule"] == "card_testing" and only["version"] == 2 and only["key"] == "c1"
    assert [e["id"] for e in only["events"]] == ["e1", "e2", "e3", "e4"]
    assert len(result.old.alerts) == 1 and len(result.new.alerts) == 2  # c2 fires in both
    assert set(result.old.rules) == {"card_testing"}  # only the compared rules run
    assert "only new: card_testing v2 key=c1" in result.summary()


def test_cli_entry_points(tmp_path: Path, rules: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_replay_arguments(parser)
    events = _jsonl(tmp_path / "events.jsonl", CARD_TESTING)
    args = parser.parse_args(
        ["--events", str(events), "--engine", "reference", "--out", "-", "--no-progress"]
    )
    assert main_replay(args) == 0
    captured = capsys.readouterr()
    assert orjson.loads(captured.out.splitlines()[0])["rule"] == "card_testing"
    assert "card_testing" in captured.err  # the summary goes to stderr when alerts use stdout
    bad = parser.parse_args(["--rules", str(rules), "--events", str(tmp_path / "x.txt")])
    (tmp_path / "x.txt").write_text("")
    assert main_replay(bad) == 1
    assert "unknown event file format" in capsys.readouterr().err


def test_parquet_input(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    parquet = pytest.importorskip("pyarrow.parquet")
    rows = [dict(e) for e in CARD_TESTING]
    path = tmp_path / "events.parquet"
    parquet.write_table(pa.Table.from_pylist(rows), path)
    report = replay([LIBRARY], [path], engine="reference")
    assert [e["id"] for e in report.alerts[0]["events"]] == ["e1", "e2", "e3", "e4"]


def test_parquet_without_pyarrow_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # makes `import pyarrow` fail
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    path = tmp_path / "events.parquet"
    path.write_bytes(b"")
    with pytest.raises(InputError, match="pip install pyarrow"):
        replay([LIBRARY], [path], engine="reference")


def test_generated_stream_has_recall_one_per_rule(tmp_path: Path) -> None:
    generator = Generator(
        seed=5, rate=4.0, fraud_ratio=0.1, duration_s=1800, disorder_ms=5000, late_ratio=0.01
    )
    events, labels = tmp_path / "events.jsonl", tmp_path / "labels.jsonl"
    write_events(generator.events(), events)
    generator.write_labels(labels)
    report = replay([LIBRARY], [events], engine="reference", labels=labels)
    scored = {name: r.score for name, r in report.rules.items() if r.score and r.score.labels}
    assert len(scored) >= 8, scored.keys()
    assert {name: s.recall for name, s in scored.items()} == dict.fromkeys(scored, 1.0)
    assert 0 < sum(report.late.values()) <= len(generator.late_event_ids)
