"""Row pattern semantics on small inputs: preference order, empty matches, skips, output."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from cep.errors import RuleCompileError
from cep.sql import parse_match_recognize
from cep.sql.execute import execute
from nfa.rowpattern_expr import RowPatternError

ROWS = [[1, 90], [2, 80], [3, 70], [4, 80], [5, 90]]


def run(clause: str, rows: Sequence[Sequence[object]] = ROWS) -> list[tuple[object, ...]]:
    """(id, match number, classifier) of each output row of ALL ROWS PER MATCH."""
    mr = parse_match_recognize(
        "MATCH_RECOGNIZE (ORDER BY id MEASURES MATCH_NUMBER() AS n, CLASSIFIER() AS l "
        f"ALL ROWS PER MATCH {clause})"
    )
    result = execute(mr, None, ["id", "value"], ["integer", "integer"], rows)
    return [(r[0], r[1], r[2]) for r in result.rows]


def test_greedy_takes_more_rows() -> None:
    assert run("PATTERN (A B*)")[:3] == [(1, 1, "A"), (2, 1, "B"), (3, 1, "B")]


def test_reluctant_takes_fewer_rows() -> None:
    assert run("PATTERN (A B*?)") == [(i, i, "A") for i in range(1, 6)]


def test_alternation_prefers_the_left_branch_not_the_longest() -> None:
    out = run("PATTERN (A | A B) DEFINE A AS id = 1")
    assert out == [(1, 1, "A")]


def test_empty_matches_are_matches() -> None:
    out = run("PATTERN (B*) DEFINE B AS value < PREV(value)")
    assert out == [(1, 1, None), (2, 2, "B"), (3, 2, "B"), (4, 3, None), (5, 4, None)]
    omitted = run("OMIT EMPTY MATCHES PATTERN (B*) DEFINE B AS value < PREV(value)")
    assert omitted == [(2, 2, "B"), (3, 2, "B")]


def test_with_unmatched_rows() -> None:
    out = run("WITH UNMATCHED ROWS PATTERN (B+) DEFINE B AS value < PREV(value)")
    assert out == [(1, None, None), (2, 1, "B"), (3, 1, "B"), (4, None, None), (5, None, None)]


def test_skip_to_next_row_overlaps() -> None:
    out = run("AFTER MATCH SKIP TO NEXT ROW PATTERN (A B) DEFINE B AS value < PREV(value)")
    assert out == [(1, 1, "A"), (2, 1, "B"), (2, 2, "A"), (3, 2, "B")]


def test_skip_to_first_and_last() -> None:
    last = run("AFTER MATCH SKIP TO LAST B PATTERN (A B)")
    assert [r[:2] for r in last] == [(1, 1), (2, 1), (2, 2), (3, 2), (3, 3), (4, 3), (4, 4), (5, 4)]
    with pytest.raises(RowPatternError, match="cannot skip to first row"):
        run("AFTER MATCH SKIP TO FIRST A PATTERN (A B)")


def test_permute_prefers_lexicographic_order() -> None:
    out = run("PATTERN (PERMUTE(B, C)) DEFINE B AS true, C AS true")
    assert out[:2] == [(1, 1, "B"), (2, 1, "C")]


def test_exclusion_hides_rows_but_keeps_them_in_the_match() -> None:
    out = run("PATTERN (A {- B -} C) DEFINE A AS id = 1")
    assert out == [(1, 1, "A"), (3, 1, "C")]


def test_anchors() -> None:
    assert run("PATTERN (^A)") == [(1, 1, "A")]
    assert run("PATTERN (A$)") == [(5, 1, "A")]


def test_running_and_final_measures_and_navigation() -> None:
    mr = parse_match_recognize(
        "MATCH_RECOGNIZE (ORDER BY id MEASURES RUNNING LAST(value) AS r, FINAL LAST(value) AS f,"
        " FIRST(value, 1) AS second, PREV(value) AS p, FINAL sum(B.value) AS s "
        "ALL ROWS PER MATCH PATTERN (A B+) DEFINE B AS value < PREV(value))"
    )
    result = execute(mr, None, ["id", "value"], ["integer", "integer"], ROWS)
    assert [r[1:6] for r in result.rows] == [
        (90, 70, None, None, 150),
        (80, 70, 80, 90, 150),
        (70, 70, 80, 80, 150),
    ]


def test_nested_loops_stay_polynomial() -> None:
    rows = [[i, 1] for i in range(40)]
    assert run("PATTERN ((A+)+ B) DEFINE A AS value = 1, B AS value = 2", rows) == []


def test_compile_errors_are_collected() -> None:
    mr = parse_match_recognize("MATCH_RECOGNIZE (MEASURES nope AS x, foo(1) AS y PATTERN (A))")
    with pytest.raises(RuleCompileError) as info:
        execute(mr, None, ["id"], ["integer"], [])
    assert [d.code for d in info.value.diagnostics] == ["E212", "E214"]
