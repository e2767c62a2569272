"""The streaming engine on unbounded input: when matches are decided, WITHIN, absence."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from cep.errors import CepError
from cep.loader import load_text
from nfa.batch import StringPool, batch_from_records
from nfa.results import EngineOutput, Match
from nfa.rowpattern_stream import RowPatternEngine

STREAMS = """
streams: |
  stream txns
    key card_id
    time ts
    out_of_order 0s
    fields {{ card_id: string, kind: string, amount: float, ts: timestamp }}
rules:
  - name: r
    sql: |
      SELECT * FROM txns MATCH_RECOGNIZE (
        PARTITION BY card_id ORDER BY ts
        MEASURES {measures}
        PATTERN ({pattern}) {within}
        DEFINE {define}
      )
"""
MIN = 60_000


@dataclass
class Run:
    """An engine over one SQL rule; `feed` events one by one, read what was emitted."""

    engine: RowPatternEngine
    pool: StringPool
    keys: StringPool = field(default_factory=StringPool)
    out: EngineOutput = field(default_factory=EngineOutput)
    seq: int = 0

    def feed(self, card: str, kind: str, minute: float, amount: float = 1.0) -> list[Match]:
        record = (
            "txns",
            {"card_id": card, "kind": kind, "amount": amount, "ts": int(minute * MIN)},
        )
        schema = self.engine.schema
        batch = batch_from_records(schema, [record], self.pool, self.keys, self.seq)
        self.seq += 1
        return self._take(self.engine.process(batch))

    def watermark(self, minute: float) -> list[Match]:
        return self._take(self.engine.advance_watermark(0, int(minute * MIN)))

    def finish(self) -> list[Match]:
        return self._take(self.engine.finish())

    def _take(self, out: EngineOutput) -> list[Match]:
        self.out.extend(out)
        return out.matches


def rule(pattern: str, define: str, within: str = "", measures: str = "count(*) AS n") -> Run:
    text = STREAMS.format(pattern=pattern, define=define, within=within, measures=measures)
    compiled = load_text(text, "t.yaml").compile(sql_on_nfa=False)
    pool = StringPool()
    return Run(RowPatternEngine(compiled.sql_programs, pool), pool)


def fields(match: Match) -> dict[str, Any]:
    return dict(match.fields)


def test_a_greedy_loop_is_decided_by_the_first_row_it_cannot_take() -> None:
    run = rule("A B+", "A AS kind = 'a', B AS kind = 'b'")
    assert run.feed("c1", "a", 0) == []
    assert run.feed("c1", "b", 1) == []
    assert run.feed("c1", "b", 2) == []  # B+ may still grow
    (match,) = run.feed("c1", "x", 3)
    assert fields(match) == {"n": 3} and match.time == 2 * MIN
    assert [e.seq for e in match.events] == [0, 1, 2]


def test_without_a_window_an_open_loop_waits_for_the_end_of_input() -> None:
    run = rule("A B+", "A AS kind = 'a', B AS kind = 'b'")
    run.feed("c1", "a", 0)
    run.feed("c1", "b", 1)
    assert run.watermark(1000) == []
    (match,) = run.finish()
    assert fields(match) == {"n": 2}


def test_within_the_closing_window_decides_the_match() -> None:
    run = rule("A B+", "A AS kind = 'a', B AS kind = 'b'", "WITHIN INTERVAL '10' MINUTE")
    run.feed("c1", "a", 0)
    run.feed("c1", "b", 4)
    run.feed("c1", "b", 9)
    assert run.watermark(9.5) == []
    (match,) = run.watermark(10)
    assert fields(match) == {"n": 3} and match.time == 9 * MIN


def test_within_a_later_row_outside_the_window_decides_and_is_not_taken() -> None:
    run = rule("A B+", "A AS kind = 'a', B AS kind = 'b'", "WITHIN INTERVAL '10' MINUTE")
    run.feed("c1", "a", 0)
    run.feed("c1", "b", 5)
    (match,) = run.feed("c1", "b", 10)  # 10 - 0 is not less than the window
    assert fields(match) == {"n": 2}


def test_within_rows_too_late_for_the_window_make_no_match() -> None:
    run = rule("A B", "A AS kind = 'a', B AS kind = 'b'", "WITHIN INTERVAL '1' MINUTE")
    run.feed("c1", "a", 0)
    run.feed("c1", "b", 1)
    assert run.finish() == []


def test_end_anchor_holds_at_the_end_of_the_window() -> None:
    run = rule("A B* $", "A AS kind = 'a', B AS kind = 'b'", "WITHIN INTERVAL '5' MINUTE")
    run.feed("c1", "a", 0)
    run.feed("c1", "b", 1)
    (match,) = run.watermark(5)
    assert fields(match) == {"n": 2}


def test_end_anchor_without_a_window_holds_only_at_the_end_of_input() -> None:
    run = rule("A B* $", "A AS kind = 'a', B AS kind = 'b'")
    run.feed("c1", "a", 0)
    run.feed("c1", "b", 1)
    assert run.watermark(10_000) == []
    (match,) = run.finish()
    assert fields(match) == {"n": 2}


ABSENT = "A AS kind = 'auth', C AS kind = 'confirm'"


def test_absence_is_completed_by_the_watermark_at_the_window_end() -> None:
    run = rule("A NOT FOLLOWED BY C", ABSENT, "WITHIN INTERVAL '5' MINUTE")
    run.feed("c1", "auth", 0)
    assert run.watermark(4) == []
    (match,) = run.watermark(5)
    assert match.time == 5 * MIN and [e.seq for e in match.events] == [0]


def test_absence_fails_when_the_absent_row_comes_inside_the_window() -> None:
    run = rule("A NOT FOLLOWED BY C", ABSENT, "WITHIN INTERVAL '5' MINUTE")
    run.feed("c1", "auth", 0)
    run.feed("c1", "other", 1)
    run.feed("c1", "confirm", 3)
    assert run.watermark(100) == [] and run.finish() == []


def test_absence_holds_when_the_absent_row_comes_after_the_window() -> None:
    run = rule("A NOT FOLLOWED BY C", ABSENT, "WITHIN INTERVAL '5' MINUTE")
    run.feed("c1", "auth", 0)
    (match,) = run.feed("c1", "confirm", 6)
    assert match.time == 5 * MIN


def test_absence_condition_reads_the_match() -> None:
    define = "A AS kind = 'auth', C AS kind = 'confirm' AND C.amount = A.amount"
    run = rule("A NOT FOLLOWED BY C", define, "WITHIN INTERVAL '5' MINUTE", "A.amount AS amount")
    run.feed("c1", "auth", 0, amount=10)
    run.feed("c1", "auth", 1, amount=20)
    run.feed("c1", "confirm", 2, amount=10)  # confirms the first only
    matches = run.finish()
    assert [fields(m) for m in matches] == [{"amount": 20.0}]


def test_absence_at_the_end_of_input_is_decided_by_the_final_watermark() -> None:
    run = rule(
        "A B NOT FOLLOWED BY C",
        "A AS kind = 'a', B AS kind = 'b', C AS kind = 'c'",
        "WITHIN INTERVAL '5' MINUTE",
    )
    run.feed("c1", "a", 0)
    run.feed("c1", "b", 1)
    (match,) = run.finish()
    assert match.time == 5 * MIN and len(match.events) == 2


def test_keys_are_matched_alone() -> None:
    run = rule("A B", "A AS kind = 'a', B AS kind = 'b'")
    run.feed("c1", "a", 0)
    run.feed("c2", "b", 1)
    run.feed("c2", "a", 2)
    (match,) = run.feed("c1", "b", 3)
    assert [e.seq for e in match.events] == [0, 3]
    assert run.finish() == []


def test_late_events_are_reported_not_matched() -> None:
    run = rule("A B", "A AS kind = 'a', B AS kind = 'b'")
    run.feed("c1", "a", 5)
    run.feed("c1", "b", 4)  # at or below the watermark (5, out of order 0)
    assert len(run.out.late) == 1 and run.finish() == []


def a_then_b_two_minutes_out_of_order() -> Run:
    """`A B` over a stream whose events may be two minutes out of order."""
    text = STREAMS.replace("out_of_order 0s", "out_of_order 2m").format(
        pattern="A B",
        define="A AS kind = 'a', B AS kind = 'b'",
        within="",
        measures="count(*) AS n",
    )
    compiled = load_text(text, "t.yaml").compile(sql_on_nfa=False)
    pool = StringPool()
    return Run(RowPatternEngine(compiled.sql_programs, pool), pool)


def test_out_of_order_events_are_matched_in_time_order() -> None:
    run = a_then_b_two_minutes_out_of_order()
    run.feed("c1", "b", 1)
    run.feed("c1", "a", 0)  # earlier time, arrives later: still in time
    (match,) = run.finish()
    assert [e.seq for e in match.events] == [1, 0]


def test_an_idleness_advance_is_not_undone_by_a_later_event() -> None:
    """The watermark never goes back: after an advance to minute 10 and an event at 11, an
    event at 9.5 is late although the largest time (11) minus the out-of-orderness (2) is
    lower."""
    run = a_then_b_two_minutes_out_of_order()
    run.feed("c1", "a", 7)
    run.watermark(10)
    run.feed("c1", "x", 11)
    assert run.feed("c1", "b", 9.5) == []
    assert [(e.seq, e.watermark) for e in run.out.late] == [(2, 10 * MIN)]


def test_snapshot_restore_keeps_rows_and_buffer() -> None:
    run = rule("A B+", "A AS kind = 'a', B AS kind = 'b'", "WITHIN INTERVAL '10' MINUTE")
    run.feed("c1", "a", 0)
    run.feed("c1", "b", 1)
    data = run.engine.snapshot()
    restored = RowPatternEngine.restore(run.engine.programs, run.pool, data)
    run.engine = restored
    (match,) = run.feed("c1", "x", 2)
    assert fields(match) == {"n": 2}


@pytest.mark.parametrize(
    ("pattern", "within", "code"),
    [
        ("A NOT FOLLOWED BY C", "", "E236"),  # absence needs a window
        ("A NOT FOLLOWED BY A", "WITHIN INTERVAL '1' MINUTE", "E236"),
    ],
)
def test_extension_diagnostics(pattern: str, within: str, code: str) -> None:
    with pytest.raises(CepError) as caught:
        rule(pattern, ABSENT, within)
    assert code in {d.code for d in caught.value.diagnostics}
