"""`cep trace`: the step-by-step walk of one rule for one key, as an analyst reads it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import orjson
import pytest

from service.trace import add_trace_arguments, main_trace, trace

LIBRARY = Path(__file__).resolve().parents[2] / "patterns"


def _jsonl(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


def _txn(ident: str, amount: float, ts: str, card: str = "c1") -> dict[str, Any]:
    return {
        "stream": "txns",
        "event_id": ident,
        "card_id": card,
        "amount": amount,
        "ts": f"2026-01-01T{ts}Z",
    }


def _auth(ident: str, auth_id: str, amount: float, ts: str) -> dict[str, Any]:
    return {
        "stream": "auths",
        "event_id": ident,
        "card_id": "c7",
        "auth_id": auth_id,
        "amount": amount,
        "ts": f"2026-01-01T{ts}Z",
    }


def _confirmation(ident: str, auth_id: str, ts: str) -> dict[str, Any]:
    return {
        "stream": "confirmations",
        "event_id": ident,
        "card_id": "c7",
        "auth_id": auth_id,
        "ts": f"2026-01-01T{ts}Z",
    }


def test_why_card_testing_did_not_fire(tmp_path: Path) -> None:
    events = _jsonl(
        tmp_path / "events.jsonl",
        [
            _txn("e1", 1.0, "10:00:00"),
            _txn("e2", 2.0, "10:01:00"),
            _txn("o1", 3.0, "10:01:10", card="other"),
            _txn("e3", 40.0, "10:01:30"),
            _txn("e4", 3.0, "10:02:00"),
            _txn("e5", 900.0, "10:03:00"),
        ],
    )
    text = trace([LIBRARY], "card_testing", "c1", [events])
    lines = text.splitlines()
    at = lines.index("event #3 txns id=e3 amount=40.0 ts=2026-01-01T10:01:30Z")
    assert lines[at + 1 : at + 4] == [
        "  partial match [small×2] (#1 #2) in state small:",
        "    take 'small' failed: (amount < 5.0) with amount=40.0",
        "    → partial match dropped (strict contiguity: the key's next event had to be taken)",
    ]
    assert (
        "  start: take 'small' failed: (amount < 5.0) with amount=40.0 → no new partial match"
        in lines
    )
    assert "5 event(s) of the key among 6 read" in text
    assert "id=o1" not in text  # another card's events are not part of this key's walk
    assert lines[-2:] == [
        "result: no alert for key 'c1'",
        "  the furthest partial match was [small×2] (#1 #2) in state small; see above what ended it",
    ]


def test_a_match_and_the_skip_strategy_pruning(tmp_path: Path) -> None:
    events = _jsonl(
        tmp_path / "events.jsonl",
        [_txn(f"e{i}", float(i), f"10:0{i}:00") for i in range(1, 5)]
        + [_txn("e5", 900.0, "10:05:00")],
    )
    text = trace([LIBRARY], "card_testing", "c1", [events])
    assert "    → completes the match [small×4, big] (#1 #2 #3 #4 #5)" in text
    assert (
        "  completed match [small×3, big] (#2 #3 #4 #5) pruned by skip past_last after the match "
        "[small×4, big] (#1 #2 #3 #4 #5)"
    ) in text
    assert "  ALERT: match [small×4, big] (#1 #2 #3 #4 #5) at 2026-01-01T10:05:00Z {" in text
    assert "tests: 4" in text and text.endswith("result: 1 alert(s) for key 'c1'")


def test_negation_discards_and_absence_completes(tmp_path: Path) -> None:
    events = _jsonl(
        tmp_path / "events.jsonl",
        [
            _auth("a1", "A1", 300.0, "10:00:00"),
            _confirmation("f1", "A2", "10:01:00"),  # another authorisation's confirmation
            _confirmation("f2", "A1", "10:02:00"),  # the forbidden event
            _auth("a2", "A3", 250.0, "10:03:00"),  # never confirmed
        ],
    )
    text = trace([LIBRARY], "auth_unconfirmed", "c7", [events])
    lines = text.splitlines()
    assert (
        "    forbidden event check (confirm:stop) failed: (auth_id == last(auth.auth_id)) "
        "with auth_id='A2', last(auth.auth_id)='A1'"
    ) in lines
    assert "    → kept in state confirm:absent (event ignored)" in lines
    at = lines.index("event #3 confirmations id=f2 auth_id='A1' ts=2026-01-01T10:02:00Z")
    assert lines[at + 1] == "  partial match [auth] (#1) in state confirm:absent:"
    after = lines[at + 2 : at + 6]
    assert (
        "    → discarded by the negation: the forbidden event reached stop state confirm:stop"
        in after
    )
    assert (
        "  at the end of input: absence completed: nothing forbidden within 5m after #4 "
        "(window ended 2026-01-01T10:08:00Z)"
    ) in lines
    assert any(
        line.startswith("  ALERT: match [auth] (#4) at 2026-01-01T10:08:00Z") for line in lines
    )
    assert text.endswith("result: 1 alert(s) for key 'c7'")


def test_window_timeout_and_late_event(tmp_path: Path) -> None:
    events = _jsonl(
        tmp_path / "events.jsonl",
        [
            _txn("e1", 1.0, "10:00:00"),
            _txn("e2", 2.0, "10:01:00"),
            _txn("e3", 3.0, "10:02:00"),
            _txn("x1", 50.0, "10:09:00", card="c2"),  # watermark 10:08:30
            _txn("e4", 4.0, "10:03:00"),  # late
            _txn("e5", 900.0, "10:12:00"),  # watermark 10:11:30: the window of #1 has passed
        ],
    )
    lines = trace([LIBRARY], "card_testing", "c1", [events]).splitlines()
    assert (
        "event #4 txns id=e4 amount=4.0 ts=2026-01-01T10:03:00Z: LATE: at or below the txns "
        "watermark 2026-01-01T10:08:30Z → not matched (sent to the late-event output)"
    ) in lines
    at = lines.index("watermark 2026-01-01T10:11:30Z: time advances without an event of the key")
    assert lines[at + 1] == (
        "  at 2026-01-01T10:11:30Z: partial match [small×3] (#1 #2 #3) timed out: the window of "
        "10m from #1 ended 2026-01-01T10:10:00Z → dropped"
    )
    assert "result: no alert for key 'c1'" in lines


def test_cli_entry_points(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_trace_arguments(parser)
    events = _jsonl(tmp_path / "events.jsonl", [_txn("e1", 1.0, "10:00:00")])
    args = parser.parse_args(["--rule", "card_testing", "--key", "c1", "--events", str(events)])
    assert main_trace(args) == 0
    assert "event #1 txns id=e1" in capsys.readouterr().out
    bad = parser.parse_args(["--rule", "nope", "--key", "c1", "--events", str(events)])
    assert main_trace(bad) == 1
    assert "no rule named 'nope'" in capsys.readouterr().err
