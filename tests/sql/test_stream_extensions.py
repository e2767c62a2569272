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
from service.rule_alerts import rule_alert

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


def test_all_rows_per_match_gives_an_output_per_row_with_running_measures() -> None:
    run = rule(
        "A B+ C",
        "A AS kind = 'a', B AS kind = 'b', C AS kind = 'c'",
        measures="count(*) AS n, CLASSIFIER() AS cls, FINAL count(*) AS total "
        "ALL ROWS PER MATCH OMIT EMPTY MATCHES",
    )
    for minute, kind in enumerate(["a", "b", "b", "c", "x"]):
        run.feed("c1", kind, minute, amount=float(minute))
    got = [fields(m) for m in run.out.matches]
    assert [(f["n"], f["cls"], f["total"], f["kind"], f["amount"]) for f in got] == [
        (1, "A", 4, "a", 0.0),
        (2, "B", 4, "b", 1.0),
        (3, "B", 4, "b", 2.0),
        (4, "C", 4, "c", 3.0),
    ]
    assert set(got[0]) == {"n", "cls", "total", "kind", "amount", "ts"}  # not the key
    # each output row's events are the match up to that row: ids of their own
    assert [len(m.events) for m in run.out.matches] == [1, 2, 3, 4]
    assert {m.time for m in run.out.matches} == {3 * MIN}
    program = run.engine.programs[0]
    alerts = [rule_alert(m, program, "c1", lambda seq: f"t/0/{seq}") for m in run.out.matches]
    assert len({a["id"] for a in alerts}) == 4  # distinct ids: none is a duplicate of another


def test_all_rows_per_match_equals_the_bounded_output() -> None:
    from cep.sql import parse_query
    from cep.sql.execute import execute

    measures = (
        "RUNNING sum(amount) AS s, LAST(B.amount) AS lb ALL ROWS PER MATCH OMIT EMPTY MATCHES"
    )
    run = rule("A B* C", "A AS kind = 'a', B AS kind = 'b', C AS kind = 'c'", measures=measures)
    kinds = ["a", "b", "c", "a", "c", "b", "a", "b", "b", "c", "x"]
    for minute, kind in enumerate(kinds):
        run.feed("c1", kind, minute, amount=float(minute + 1))
    run.finish()
    query = parse_query(
        "SELECT * FROM t MATCH_RECOGNIZE (PARTITION BY card_id ORDER BY ts MEASURES "
        f"{measures} PATTERN (A B* C) DEFINE A AS kind = 'a', B AS kind = 'b', "
        "C AS kind = 'c')"
    )
    rows = [("c1", k, float(i + 1), i * MIN) for i, k in enumerate(kinds)]
    bounded = execute(
        query.match_recognize,
        None,
        ["card_id", "kind", "amount", "ts"],
        ["varchar", "varchar", "double", "bigint"],
        rows,
    )
    want = [(r[2], r[3], r[4]) for r in bounded.rows]  # measures s, lb and the kind column
    got = [(f["s"], f["lb"], f["kind"]) for f in map(fields, run.out.matches)]
    assert got == want and len(got) == 9


@pytest.mark.parametrize(
    ("clause", "pattern"),
    [("ALL ROWS PER MATCH WITH UNMATCHED ROWS", "A B"), ("ALL ROWS PER MATCH", "A* B?")],
)
def test_rules_refuse_outputs_without_an_event(clause: str, pattern: str) -> None:
    with pytest.raises(CepError) as caught:
        rule(pattern, "A AS kind = 'a', B AS kind = 'b'", measures=f"count(*) AS n {clause}")
    assert "E234" in str(caught.value)


def test_all_rows_per_match_shows_empty_matches_only_of_patterns_that_have_none() -> None:
    run = rule(
        "A B", "A AS kind = 'a', B AS kind = 'b'", measures="count(*) AS n ALL ROWS PER MATCH"
    )
    run.feed("c1", "a", 0)
    run.feed("c1", "b", 1)
    assert [fields(m)["n"] for m in run.out.matches] == [1, 2]


def test_all_rows_per_match_keeps_a_subset_pattern_on_the_row_pattern_engine() -> None:
    text = STREAMS.format(
        pattern="A B",
        define="A AS kind = 'a', B AS kind = 'b'",
        within="",
        measures="count(*) AS n ALL ROWS PER MATCH",
    )
    compiled = load_text(text, "t.yaml").compile()
    assert not compiled.programs and len(compiled.sql_programs) == 1
    choice = compiled.engine("r")
    assert choice is not None and "ALL ROWS PER MATCH" in choice.reason
