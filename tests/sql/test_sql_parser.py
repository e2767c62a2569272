"""The MATCH_RECOGNIZE grammar: every clause, name folding, and syntax diagnostics."""

from __future__ import annotations

import pytest

from cep.errors import RuleSyntaxError
from cep.sql import ast, parse_match_recognize, parse_pattern, parse_query

FULL = """
SELECT m.id AS row_id, m.label
FROM (VALUES (1, 'p', 90), (2, 'p', 80)) t(id, part, value)
MATCH_RECOGNIZE (
  PARTITION BY part
  ORDER BY id DESC
  MEASURES RUNNING LAST(value) AS val, FINAL count(A.*) AS n, CLASSIFIER() AS label
  ALL ROWS PER MATCH WITH UNMATCHED ROWS
  AFTER MATCH SKIP TO FIRST b
  PATTERN (^ a {- "b"+? -} C{2,3} | PERMUTE(a, C) $)
  SUBSET U = (a, C)
  DEFINE a AS a.value < PREV(a.value, 2), C AS sum(U.value) > 10
) AS m
"""


def test_full_query() -> None:
    q = parse_query(FULL)
    assert [i.alias for i in q.select or ()] == ["row_id", None]
    assert isinstance(q.relation, ast.Values) and q.relation.columns == ("id", "part", "value")
    mr = q.match_recognize
    assert mr.partition_by == (ast.ColumnRef(None, "part"),)
    assert mr.order_by[0].descending
    assert [m.name for m in mr.measures] == ["val", "n", "label"]
    assert mr.measures[0].expr == ast.Call("last", (ast.ColumnRef(None, "value"),), "RUNNING")
    assert mr.measures[1].expr == ast.Call("count", (), "FINAL", star=True, star_label="A")
    assert mr.rows_per_match is ast.RowsPerMatch.ALL_WITH_UNMATCHED
    assert mr.skip == ast.AfterMatchSkip(ast.SkipKind.TO_FIRST, "B")
    assert mr.subsets == (ast.Subset("U", ("A", "C")),)
    assert [d.label for d in mr.definitions] == ["A", "C"]


def test_pattern_shapes() -> None:
    p = parse_pattern('^ a {- "b"+? -} C{2,3} | PERMUTE(a, C) $')
    assert isinstance(p, ast.Alternation)
    left, right = p.items
    assert isinstance(left, ast.Concat)
    anchor, label, exclusion, quantified = left.items
    assert anchor == ast.Anchor(True) and label == ast.Label("A")
    assert exclusion == ast.Exclusion(ast.Quantified(ast.Label("b"), 1, None, greedy=False))
    assert quantified == ast.Quantified(ast.Label("C"), 2, 3)
    assert right == ast.Concat((ast.Permute((ast.Label("A"), ast.Label("C"))), ast.Anchor(False)))


@pytest.mark.parametrize(
    ("text", "low", "high", "greedy"),
    [
        ("B*", 0, None, True),
        ("B+?", 1, None, False),
        ("B??", 0, 1, False),
        ("B{,}", 0, None, True),
        ("B{,5}?", 0, 5, False),
        ("B{2,}", 2, None, True),
        ("B{3}", 3, 3, True),
    ],
)
def test_quantifiers(text: str, low: int, high: int | None, greedy: bool) -> None:
    assert parse_pattern(text) == ast.Quantified(ast.Label("B"), low, high, greedy)


def test_empty_pattern_and_defaults() -> None:
    mr = parse_match_recognize("MATCH_RECOGNIZE (PATTERN (() | A))")
    assert mr.pattern == ast.Alternation((ast.Empty(), ast.Label("A")))
    assert mr.rows_per_match is ast.RowsPerMatch.ONE
    assert mr.skip.kind is ast.SkipKind.PAST_LAST_ROW


@pytest.mark.parametrize(
    ("clause", "mode"),
    [
        ("ONE ROW PER MATCH", ast.RowsPerMatch.ONE),
        ("ALL ROWS PER MATCH", ast.RowsPerMatch.ALL_SHOW_EMPTY),
        ("ALL ROWS PER MATCH SHOW EMPTY MATCHES", ast.RowsPerMatch.ALL_SHOW_EMPTY),
        ("ALL ROWS PER MATCH OMIT EMPTY MATCHES", ast.RowsPerMatch.ALL_OMIT_EMPTY),
    ],
)
def test_rows_per_match(clause: str, mode: ast.RowsPerMatch) -> None:
    assert parse_match_recognize(f"MATCH_RECOGNIZE ({clause} PATTERN (A))").rows_per_match is mode


@pytest.mark.parametrize(
    ("clause", "kind", "label"),
    [
        ("PAST LAST ROW", ast.SkipKind.PAST_LAST_ROW, None),
        ("TO NEXT ROW", ast.SkipKind.TO_NEXT_ROW, None),
        ("TO FIRST A", ast.SkipKind.TO_FIRST, "A"),
        ("TO LAST A", ast.SkipKind.TO_LAST, "A"),
        ("TO a", ast.SkipKind.TO_LAST, "A"),
    ],
)
def test_skip(clause: str, kind: ast.SkipKind, label: str | None) -> None:
    mr = parse_match_recognize(f"MATCH_RECOGNIZE (AFTER MATCH SKIP {clause} PATTERN (A))")
    assert (mr.skip.kind, mr.skip.label) == (kind, label)


def test_streaming_extensions() -> None:
    mr = parse_match_recognize(
        "MATCH_RECOGNIZE (PATTERN (A B+ NOT FOLLOWED BY C) WITHIN INTERVAL '10' MINUTE)"
    )
    assert mr.absent == "C" and mr.within_ms == 600_000


def test_keywords_are_names_where_no_keyword_fits() -> None:
    mr = parse_match_recognize("MATCH_RECOGNIZE (PATTERN ((A | B)+ LAST) DEFINE LAST AS true)")
    assert mr.definitions[0].label == "LAST"
    q = parse_query("SELECT final_label FROM t MATCH_RECOGNIZE (PATTERN (A))")
    assert q.select == (ast.SelectItem(ast.ColumnRef(None, "final_label")),)


def test_syntax_error_has_position_caret_and_expected_tokens() -> None:
    text = "MATCH_RECOGNIZE (\n  PATTERN (A B+)\n  DEFINE B AS B.value <\n)"
    with pytest.raises(RuleSyntaxError) as info:
        parse_match_recognize(text, file="rule.sql")
    (d,) = info.value.diagnostics
    assert (d.code, d.span.file, d.span.line, d.span.column) == ("E201", "rule.sql", 4, 1)
    assert "'('" in d.expected
    assert "^" in info.value.render()


def test_bad_quantifier_range() -> None:
    with pytest.raises(RuleSyntaxError) as info:
        parse_pattern("A{3,2}")
    assert info.value.diagnostics[0].code == "E202"
