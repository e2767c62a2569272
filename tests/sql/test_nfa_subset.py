"""SQL rules in the NFA subset run on the NFA engines with the row-pattern engine's results.

- which rules are in the subset (each extension's shapes too: gaps, leads, alternations,
  a reluctant last variable), and the reason given for those that are not;
- the disjointness analysis;
- differential: random subset rules (`subset_rules`) and random keyed streams give the
  same alerts (events, stages, time, fields) on the row-pattern engine (the rule as a
  `SqlProgram`), the reference engine and the Numba engine (the rule as a `Program`);
  `test_nfa_subset_shapes` has targeted examples of each extension;
- the conformance cases in the subset give the bounded matcher's results on the NFA;
- the card-testing query is on the Numba engine and finds the DSL rule's matches.

Set CEP_HYPOTHESIS_EXAMPLES to run more (or fewer) examples.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from subset_rules import (
    both_engines,
    numba_alerts_by_rule,
    rule_text,
    sql_rule_text,
    subset_rule,
)

from cep.errors import Severity, Span
from cep.loader import compile_paths, load_text
from cep.sql import ast, parse_expr
from cep.sql.disjoint import approximate, disjoint
from cep.sql.nfa_subset import nfa_program
from cep.sql.rules import SqlRule
from nfa.batch import StringPool, batch_from_records
from nfa.engine import Engine
from nfa.program import Program
from nfa.reference import ReferenceEngine
from service.cli import main

EXAMPLES = int(os.environ.get("CEP_HYPOTHESIS_EXAMPLES", "60"))
SEEDS = 8


def compiled(
    pattern: str,
    define: str,
    measures: str = "count(*) AS n",
    skip: str = "PAST LAST ROW",
    within: str = "",
    select: str = "*",
) -> tuple[str, str]:
    """The engine of rule `r` and the reason given."""
    text = sql_rule_text(pattern, define, measures, skip, within, select)
    rules = load_text(text, "r.yaml").compile()
    choice = rules.engine("r")
    assert choice is not None
    on_nfa = [p.info.name for p in rules.programs] == ["r"]
    assert on_nfa == (choice.engine == "nfa") and on_nfa != bool(rules.sql_programs)
    (note,) = [w for w in rules.warnings if w.severity is Severity.NOTE]
    assert note.code == ("I240" if on_nfa else "I241")
    return choice.engine, choice.reason


@pytest.mark.parametrize(
    ("pattern", "define", "extra"),
    [
        ("A{3,} B", "A AS x < 2, B AS x > 4", {}),
        ("A? B* C{2}", "A AS x = 1, B AS x IN (2, 3), C AS x IS NULL", {}),
        ("A+? B", "A AS kind = 'a', B AS kind <> 'a'", {}),  # reluctant: the parse is unique
        ("A B C", "A AS x = 1", {}),  # nothing of variable count: no condition needed
        ("A* B", "A AS x BETWEEN 1 AND 2, B AS x >= 3 AND y > A.y", {}),
        ("A+ B", "A AS x < 2, B AS x > 2 AND x > A.x AND count(A.*) > 1", {}),
        ("A+ B", "A AS x < 2 AND count(A.*) < 4, B AS x > 2", {"skip": "TO NEXT ROW"}),
        (
            "A B NOT FOLLOWED BY C",
            "A AS x = 1, C AS kind = A.kind",
            {"within": "WITHIN INTERVAL '1' MINUTE"},
        ),
        ("A B", "A AS x = 1", {"select": "k, n * 2 AS d", "measures": "count(*) AS n"}),
        ("A B", "A AS x = 1", {"measures": "count() AS n"}),  # Trino's count() is count(*)
        ("A ((B) C)", "A AS x = 1", {}),  # parentheses around a concatenation
        # A reluctant last variable ends the match at its lower bound: B+? is B.
        ("A B+?", "A AS x = 1", {}),
        (
            "A B{2,}? NOT FOLLOWED BY C",
            "B AS x > 1, C AS x = 1",
            {"within": "WITHIN INTERVAL '1' MINUTE"},
        ),
        # Alternations of disjoint variables.
        ("A (B | C) D", "A AS x = 1, B AS x = 2, C AS x = 3 AND y > A.y, D AS count(C.*) = 1", {}),
        ("(A | B) C* D", "A AS x = 1, B AS x = 2, C AS x = 3, D AS x = 4", {}),
        ("A (B | C)", "A AS x = 1, B AS x = 2, C AS x = 3", {"select": "k, n"}),
        # Gaps: a reluctant loop ends at the first row of the next element.
        ("A X*? B", "A AS x = 1, B AS x = 2", {}),
        ("A X{0,5}? B", "A AS x = 1, X AS y > 1.0, B AS x > A.x AND count(X.*) < 3", {}),
        ("A+ X*? B", "A AS x = 1, X AS x > 1, B AS x = 3", {}),  # A is disjoint from X, B
        ("A X*? (B | C)", "A AS x = 1, B AS x = 2, C AS x = 3", {"skip": "TO NEXT ROW"}),
        ("A X*? B Y*? C", "A AS x = 1, X AS x > 0, B AS count(X.*) < 2, C AS y > A.y", {}),
        (
            "A X*? B NOT FOLLOWED BY C",
            "A AS x = 1, B AS x = 2, C AS x = 2",
            {"within": "WITHIN INTERVAL '1' MINUTE"},
        ),
        # A greedy loop before a gap takes its longest run.
        ("S{3,} X*? B", "S AS x < 2, B AS x > 4", {"measures": "count(S.*) AS n"}),
        ("A S* X*? B", "A AS x = 5, S AS x < 2 AND count(S.*) < 3, X AS y > 1.0, B AS x = 3", {}),
    ],
)
def test_in_the_subset(pattern: str, define: str, extra: dict[str, str]) -> None:
    engine, reason = compiled(pattern, define, **extra)
    assert engine == "nfa", reason
    assert "unique" in reason
    assert ("ends at the first row" in reason) == ("X" in pattern)
    assert ("the greedy S before it" in reason) == ("S" in pattern)
    assert ("alternations of disjoint variables" in reason) == ("|" in pattern)


@pytest.mark.parametrize(
    ("pattern", "define", "extra", "reason"),
    [
        ("A+ B", "A AS x < 5, B AS x > 2", {}, "A (a variable count) and B"),
        ("A+ B", "B AS x > 2", {}, "A (a variable count) and B"),  # undefined: always true
        ("A* B? C", "A AS x < 2, B AS x > 3, C AS x = 1", {}, "A (a variable count) and C"),
        ("A+ B", "A AS x < 2 OR y > 1.0, B AS x > 2", {}, "A (a variable count) and B"),
        ("(A | B) C", "A AS x = 1, B AS x >= 1, C AS x = 3", {}, "A and B of an alternation"),
        ("(A | B)+ C", "A AS x = 1, B AS x = 2, C AS x = 3", {}, "quantified alternation"),
        ("A (B C | D)", "A AS x = 1, B AS x = 2", {}, "alternation of more than single"),
        ("A (B | C)", "B AS x = 1, C AS x = 2", {"measures": "CLASSIFIER() AS c"}, "last row"),
        ("A (B | C)", "B AS x = 1, C AS x = 2", {"measures": "x AS x"}, "last row when the last"),
        ("(A | B)", "A AS x = 1, B AS x = 2", {"select": "k"}, "the column k in the SELECT"),
        ("A (B | C)", "B AS x = 1, C AS x = 2 AND y > B.y", {}, "rows of B in the DEFINE of C"),
        ("A X* B", "A AS x = 1, B AS x = 2", {}, "(reluctant, X would end at the first B"),
        ("A X+? B", "A AS x = 1, B AS x = 2", {}, "X (a variable count) and B"),
        ("A X?? B", "A AS x = 1, B AS x = 2", {}, "X (a variable count) and B"),
        ("A X*? B{2}", "A AS x = 1, B AS x = 2", {}, "X (a variable count) and B"),
        ("X*? B", "B AS x = 2", {}, "X (a variable count) and B"),  # nothing before X
        ("A B*? X*? C", "A AS x = 1, B AS x < 3, C AS x = 5", {}, "B (a variable count) and X"),
        ("A X*? B C", "A AS x = 1, B AS x = 2", {}, "but C follows that row and may fail"),
        ("A X*? B Y*? C", "B AS x = 2, Y AS x > 0", {}, "Y after another gap"),
        ("A X*? B Y{0,3}? C", "B AS x = 2", {}, "Y after another gap"),
        ("A X*? B Y*? C", "B AS x = 2, C AS y > B.y", {}, "DEFINE C reads rows of B"),
        ("A X*? B Y*? C", "B AS x = 2, C AS count(X.*) > 1", {}, "DEFINE C reads rows of X"),
        ("A B*?", "A AS x = 1, B AS x = 2", {}, "no fixed count"),
        ("S{2,4} X*? B", "S AS x < 2, B AS x > 4", {}, "S (a variable count) and X"),
        ("S+ X*? B", "S AS x < 2, B AS x < 3", {}, "S (a variable count) and B"),
        ("S+ X*? B", "S AS x < 2, B AS x > 4 AND y > max(S.y)", {}, "DEFINE B reads rows of S"),
        ("S+ X*? B", "S AS x < 2, X AS count(X.*) < 3, B AS x > 4", {}, "X reads rows of X"),
        ("S+ X*? B Y*? C", "S AS x < 2, B AS x = 3, C AS y > max(S.y)", {}, "C reads rows of S"),
        ("(A B)+ C", "A AS x = 1, B AS x = 2, C AS x = 3", {}, "quantified group"),
        ("PERMUTE(A, B)", "A AS x = 1, B AS x = 2", {}, "PERMUTE"),
        ("^ A", "A AS x = 1", {}, "anchor"),
        ("A {- B -} C", "A AS x = 1", {}, "exclusion"),
        ("A B A", "A AS x = 1", {}, "appears twice"),
        ("A B+", "A AS x = 1, B AS x = 2", {}, "no fixed count"),
        ("A B?", "A AS x = 1, B AS x = 2", {}, "no fixed count"),
        ("A B", "A AS x = 1", {"skip": "TO LAST B"}, "SKIP TO LAST B"),
        ("A B", "A AS x = 1", {"skip": "TO FIRST B"}, "SKIP TO FIRST B"),
        ("A B", "A AS x = PREV(x)", {}, "DEFINE A uses PREV()"),
        ("A B", "A AS x = 1", {"measures": "MATCH_NUMBER() AS m"}, "MATCH_NUMBER()"),
        ("A B", "A AS x / 2 = 1", {}, "operator /"),
        ("A B", "A AS kind < 'b'", {}, "order"),
        ("A+ B", "A AS x < 2 AND sum(A.x) < 3, B AS x > 2", {}, "over the variable being"),
        ("A B", "A AS x = B.x", {}, "rows of B in the DEFINE of A"),
        ("A? B", "A AS x = 1, B AS x = 2", {"measures": "FIRST(x) AS f"}, "may have no row"),
        ("A B", "A AS x = 1", {"measures": "LAST(A.x, 1) AS f"}, "offset"),
        ("A B", "A AS x = 1", {"measures": "max(B.kind) AS f"}, "not string (not ordered)"),
        ("A B", "A AS x = 1, B AS B.kind > A.kind", {}, "strings compare only with == and !="),
        ("A B", "A AS x = 1", {"measures": "count(*) AS n, x || 'z' AS z"}, "operator ||"),
    ],
)
def test_outside_the_subset_stays_on_the_row_pattern_engine(
    pattern: str, define: str, extra: dict[str, str], reason: str
) -> None:
    engine, given_reason = compiled(pattern, define, **extra)
    assert engine == "row-pattern"
    assert reason in given_reason


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("x < 5", "x > 500", True),
        ("x < 5", "x >= 5", True),
        ("x <= 5", "x >= 5", False),
        ("x BETWEEN 1 AND 3", "x IN (4, 0)", True),
        ("x BETWEEN 1 AND 3", "x IN (4, 3)", False),
        ("x IS NULL", "x > 1", True),
        ("x IS NOT NULL", "x > 1", False),
        ("kind = 'a'", "kind <> 'a'", True),
        ("kind = 'a' AND x > 1", "x < 0 OR kind IN ('b', 'c')", True),
        ("ok", "NOT ok", True),
        ("x > 3 AND x < 2", "y = 1", True),  # never holds
        ("x > 1 AND PREV(x) > 1", "x < 0", True),
        ("x > 1 OR PREV(x) > 1", "x < 0", False),
        ("A.x < 1", "x > 2", True),
        ("B.x < 1", "x > 2", False),  # another variable's row, not the current one
        ("-x < 1", "x > 2", False),
    ],
)
def test_disjointness(a: str, b: str, expected: bool) -> None:
    columns = {"x": 0, "y": 1, "kind": 2, "ok": 3}
    left = approximate(parse_expr(a), "A", columns)
    right = approximate(parse_expr(b), "A", columns)
    assert disjoint(left, right) is expected
    assert disjoint(right, left) is expected


@settings(
    max_examples=EXAMPLES * 3,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    data=st.data(),
    rule=subset_rule(),
    cuts=st.lists(st.integers(0, 40), max_size=4),
    advance=st.booleans(),
)
def test_reference_engine_equals_row_pattern_engine(
    data: st.DataObject, rule: tuple[str, list[list[int | None]]], cuts: list[int], advance: bool
) -> None:
    program, run, want = both_engines(data, rule, cuts, advance)
    assert run(lambda pool: ReferenceEngine([program], pool)) == want


@settings(
    max_examples=max(EXAMPLES // 3, 5),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # shrinking would compile a lot
)
@given(
    data=st.data(),
    seed=st.integers(0, SEEDS - 1),
    cuts=st.lists(st.integers(0, 40), max_size=4),
    advance=st.booleans(),
)
def test_numba_engine_equals_row_pattern_engine(
    data: st.DataObject, seed: int, cuts: list[int], advance: bool
) -> None:
    """Rules from a few seeds, with conditions that read only the current row: the kernel
    is shared and the atoms' evaluators of these rules are compiled once, then cached."""
    rule = rule_text(random.Random(seed), history=False)
    program, run, want = both_engines(data, rule, cuts, advance)
    assert run(lambda pool: Engine([program], pool)) == want


def _conformance_in_subset() -> list[Any]:
    from test_stream_equivalence import PREPARED

    params = []
    for param in PREPARED:
        case, expected = param.values
        rule = SqlRule("case", ast.Query(None, ast.TableName("t"), case.mr), Span.unknown())
        program, _ = nfa_program(rule, 0, case.program.schema)
        if program is not None:
            params.append(pytest.param(case, program, expected, id=param.id))
    return params


@pytest.mark.parametrize(("case", "program", "expected"), _conformance_in_subset())
def test_conformance_cases_in_the_subset(case: Any, program: Program, expected: Any) -> None:
    """The conformance cases in the subset (as ONE ROW PER MATCH): the NFA program finds
    the bounded matcher's matches and measures."""
    pool, keys = StringPool(), StringPool()
    records = []
    for i in sorted(case.ts, key=case.ts.__getitem__):
        values = dict(zip(case.columns, case.rows[i], strict=True))
        records.append(("t", {**values, "_k": case.key(case.rows[i]), "_ts": case.ts[i]}))
    engine = ReferenceEngine([program], pool)
    out = engine.process(batch_from_records(program.schema, records, pool, keys))
    out.extend(engine.finish())
    found: dict[str, list[tuple[object, ...]]] = {}
    for match in out.matches:
        found.setdefault(keys.value(match.key), []).append(tuple(v for _, v in match.fields))
    assert found == expected


CARD_TESTING = """
stream txns key card_id time ts out_of_order 0s
  fields { card_id: string, amount: float, ts: timestamp }
rule dsl from txns
  pattern small{3,} consecutive next big
  where small: amount < 5.00
        big: amount > 500.00
  within 10m skip past last
  emit to "alerts" { first: first(small.ts), last: big.ts }
"""
CARD_TESTING_SQL = """-- rule: sql
-- emit_to: alerts
SELECT * FROM txns MATCH_RECOGNIZE (
  PARTITION BY card_id ORDER BY ts
  MEASURES FIRST(S.ts) AS first, B.ts AS last
  ONE ROW PER MATCH AFTER MATCH SKIP PAST LAST ROW
  PATTERN (S{3,} B) WITHIN INTERVAL '10' MINUTE
  DEFINE S AS S.amount < 5.00, B AS B.amount > 500.00
);
"""


def test_card_testing_query_runs_on_the_numba_engine_as_the_dsl_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "streams.cep").write_text(CARD_TESTING)
    (tmp_path / "card.sql").write_text(CARD_TESTING_SQL)
    rules = compile_paths([tmp_path])
    assert [p.info.name for p in rules.programs] == ["dsl", "sql"] and not rules.sql_programs
    dsl, sql = rules.programs
    assert sql.describe().split("\n", 1)[1] == dsl.describe().split("\n", 1)[1].replace(
        "small", "S"
    ).replace("big", "B")
    amounts = [1, 2, 3, 900, 1, 1, 1, 1, 700, 2, 2, 600, 3, 3, 3, 3, 4, 800, 1, 1, 1]
    records = [
        ("txns", {"card_id": f"c{i % 2}", "amount": float(a), "ts": i * 30_000})
        for i, a in enumerate(a for a in amounts for _ in range(2))
    ]
    by_rule = numba_alerts_by_rule(rules, records)
    assert by_rule[0] == by_rule[1] and len(by_rule[0]) == 6
    assert main(["check", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "note[I240]: SQL rule `sql` runs on the NFA engine" in err
    assert main(["explain", "sql", "--rules", str(tmp_path)]) == 0
    assert "take" in capsys.readouterr().out
