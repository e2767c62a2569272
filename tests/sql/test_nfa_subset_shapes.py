"""The extensions of the NFA subset, on targeted rules: gaps, alternations, a reluctant last.

- differential: each targeted rule (the shapes fraud rules take: "a change, then the first
  large purchase after it", chains of such steps, alternatives, absence after a gap) gives
  the row-pattern engine's alerts on the reference engine, on random keyed streams; so
  does any rule of a broad random space that the subset accepts;
- the gap of a SQL rule is the DSL's `until` loop: the program equals the hand-written DSL
  rule's, and the Numba engine finds the same matches for both;
- shapes next to the subset, where SQL backtracks into a gap, give other matches when
  forced onto the NFA (so the subset's restrictions are needed, and the tests see it).

Set CEP_HYPOTHESIS_EXAMPLES to run more (or fewer) examples.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from subset_rules import (
    ANY_X,
    BROAD_X,
    both_engines,
    broad_rule_text,
    compile_both,
    matches,
    numba_alerts_by_rule,
    sql_rule_text,
)

from cep.loader import compile_paths
from nfa.reference import ReferenceEngine
from nfa.rowpattern_stream import RowPatternEngine

EXAMPLES = int(os.environ.get("CEP_HYPOTHESIS_EXAMPLES", "60"))
WITHIN = "WITHIN INTERVAL '4' SECOND"
#: (pattern, DEFINE, other clauses): x = 1 is a change, x = 2 a purchase, and so on.
TARGETED = [
    ("A X*? B", "A AS x = 1, B AS x = 2", {}),
    ("A X*? B", "A AS x = 1, B AS x = 2 AND y > A.y", {"within": WITHIN}),
    ("A X*? B", "A AS x = 1, X AS x <> 0, B AS x >= 2", {"measures": "count(X.*) AS n"}),
    ("A X*? B", "A AS x = 1, X AS count(X.*) < 3, B AS x = 2 OR y IS NULL", {}),
    ("A X{0,3}? B", "A AS x = 1, B AS x = 2", {"skip": "TO NEXT ROW"}),
    ("A{2} X*? B", "A AS x = 1, B AS x = 1", {"measures": "FIRST(A.ts) AS t, B.ts AS u"}),
    ("A+ X*? B", "A AS x = 1, X AS x > 1, B AS x = 3", {"measures": "count(A.*) AS n"}),
    ("A X*? B Y*? C", "A AS x = 1, B AS x = 2 AND count(X.*) < 2, C AS x = 3", {}),
    ("A X*? B Y*? C", "A AS x = 1, B AS x = 2, C AS x = 3 AND kind = A.kind", {"within": WITHIN}),
    ("A X*? B NOT FOLLOWED BY C", "A AS x = 1, B AS x = 2, C AS x = 0", {"within": WITHIN}),
    ("A X*? B NOT FOLLOWED BY C", "A AS x = 1, B AS x = 2, C AS x = 2", {"within": WITHIN}),
    ("A X*? (B | C)", "A AS x = 1, B AS x = 2, C AS x = 3 AND y > 1.0", {"skip": "TO NEXT ROW"}),
    ("A (B | C) D", "A AS x = 1, B AS x = 2, C AS x = 3, D AS x > 3", {}),
    ("A (B | C) X*? D", "A AS x = 1, B AS x = 2, C AS x = 3, D AS x = 1", {}),
    ("(A | B) C* D", "A AS x = 1, B AS x = 2, C AS x = 3, D AS x > 3", {}),
    ("S{2,} X*? B", "S AS x < 2, B AS x > 3", {"measures": "count(S.*) AS n, count(X.*) AS m"}),
    ("S{2,} X*? B", "S AS x < 2, B AS x > 3 AND y > 1.0", {"skip": "TO NEXT ROW"}),
    ("S+ X*? B", "S AS x < 2 AND count(S.*) < 4, X AS x <> 5, B AS x > 3", {"within": WITHIN}),
    ("A S* X*? B", "A AS x = 5, S AS x < 2, B AS x = 3", {"measures": "count(S.*) AS n"}),
    ("A S{2,} X{0,3}? B Y*? C", "A AS x = 5, S AS x < 2, B AS x = 3, C AS kind = A.kind", {}),
    ("A B+?", "A AS x = 1, B AS x >= 2", {"measures": "count(B.*) AS n, x AS last_x"}),
    ("A B{2,}? NOT FOLLOWED BY C", "A AS x = 1, B AS x >= 2, C AS x = 1", {"within": WITHIN}),
]
#: A, B, two rows that fail what follows B (x = 0), B (a lower y), C: (x, y) per row.
LATER_B = ([1, 2, 0, 0, 2, 3], [1.0, 2.0, 1.0, 1.0, 0.5, 1.0])
#: Next to the subset: SQL tries a later B when what follows the first one fails, or a
#: shorter run of the greedy S when B reads the rows of S or X; given a stream that shows it.
BACKTRACKING = [
    ("A X*? B C", "A AS x = 1, B AS x = 2, C AS x = 3", LATER_B),
    ("A X*? B Y*? C", "A AS x = 1, B AS x = 2, Y AS x <> 0, C AS x = 3", LATER_B),
    ("A X*? B Y*? C", "A AS x = 1, B AS x = 2, C AS x = 3 AND y > B.y", LATER_B),
    ("A X*? B Y{0,2}? C", "A AS x = 1, B AS x = 2, C AS x = 3", LATER_B),
    ("S+ X*? B", "S AS x < 2, B AS x = 3 AND y > max(S.y)", ([0, 0, 3], [1.0, 5.0, 2.0])),
    ("S+ X*? B", "S AS x < 2, B AS x = 3 AND count(X.*) > 1", ([0, 0, 0, 3], [1.0] * 4)),
    (
        "S{2,} X*? B Y*? C",
        "S AS x < 2, B AS x = 3, C AS x = 4 AND y > max(S.y)",
        ([0, 0, 0, 3, 4], [1.0, 1.0, 5.0, 1.0, 2.0]),
    ),
]


@pytest.mark.parametrize(("pattern", "define", "extra"), TARGETED)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data(), cuts=st.lists(st.integers(0, 40), max_size=4), advance=st.booleans())
def test_targeted_rules_give_the_row_pattern_engines_alerts(
    pattern: str,
    define: str,
    extra: dict[str, str],
    data: st.DataObject,
    cuts: list[int],
    advance: bool,
) -> None:
    rule = (sql_rule_text(pattern, define, **extra), [ANY_X])
    program, run, want = both_engines(data, rule, cuts, advance)
    assert run(lambda pool: ReferenceEngine([program], pool)) == want


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    data=st.data(),
    seed=st.integers(0, 2**32),
    cuts=st.lists(st.integers(0, 40), max_size=4),
    advance=st.booleans(),
)
def test_any_rule_the_subset_accepts_gives_the_row_pattern_engines_alerts(
    data: st.DataObject, seed: int, cuts: list[int], advance: bool
) -> None:
    """Rules drawn from a broad space, kept when the subset accepts them: this tests the
    subset's decision (its proofs' conditions), not only rules built to satisfy it. (A
    seed, not hypothesis's randoms: most drawn rules are refused, and the draws repeat.)"""
    rule = (broad_rule_text(random.Random(seed)), [BROAD_X])
    program, run, want = both_engines(data, rule, cuts, advance)
    assert run(lambda pool: ReferenceEngine([program], pool)) == want


@pytest.mark.parametrize(("pattern", "define", "rows"), BACKTRACKING)
def test_backtracking_shapes_differ_when_forced_onto_the_nfa(
    pattern: str,
    define: str,
    rows: tuple[list[int], list[float]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the gap conditions these rules would run on the NFA, and give other matches
    on these rows: SQL backtracks to a match, the NFA's single run gives up."""
    from cep.sql import subset_shape

    monkeypatch.setattr(subset_shape, "_check_gaps", lambda elements, defines: None)
    text = sql_rule_text(pattern, define)
    on_nfa, on_rows = compile_both(text)
    (program,) = on_nfa.programs
    (sql,) = on_rows.sql_programs
    events = [(0, x, y, "a", 0) for x, y in zip(*rows, strict=True)]
    nfa = matches(
        lambda pool: ReferenceEngine([program], pool),
        program.stage_names,
        on_nfa,
        events,
        [],
        False,
    )
    sql_alerts = matches(
        lambda pool: RowPatternEngine([sql], pool), sql.stage_names, on_rows, events, [], False
    )
    assert sql_alerts and nfa != sql_alerts


GAP_DSL = """
stream acct key account time ts out_of_order 0s
  fields { account: string, kind: string, amount: float, ts: timestamp }
rule dsl from acct
  pattern C next X* consecutive until (kind == "purchase" and amount > 500.0) next B
  where C: kind == "password_change"
        B: kind == "purchase" and amount > 500.0
  within 1h skip past last
  emit to "alerts" { at: B.ts, gap: count(X) }
"""
GAP_SQL = """-- rule: sql
-- emit_to: alerts
SELECT * FROM acct MATCH_RECOGNIZE (
  PARTITION BY account ORDER BY ts
  MEASURES B.ts AS at, count(X.*) AS gap
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (C X*? B) WITHIN INTERVAL '1' HOUR
  DEFINE C AS kind = 'password_change', B AS kind = 'purchase' AND amount > 500.0
);
"""


def test_a_gap_is_the_dsls_until_loop(tmp_path: Path) -> None:
    (tmp_path / "acct.cep").write_text(GAP_DSL)
    (tmp_path / "change.sql").write_text(GAP_SQL)
    rules = compile_paths([tmp_path])
    assert [p.info.name for p in rules.programs] == ["dsl", "sql"] and not rules.sql_programs
    dsl, sql = rules.programs
    assert sql.describe().split("\n", 1)[1] == dsl.describe().split("\n", 1)[1]
    kinds = ["login", "password_change", "purchase", "login", "purchase", "password_change"]
    amounts = [0.0, 0.0, 20.0, 0.0, 900.0, 0.0, 700.0, 10.0]
    records = [
        ("acct", {"account": f"a{i % 3}", "kind": k, "amount": a, "ts": i * 60_000})
        for i, (k, a) in enumerate((k, a) for a in amounts for k in kinds)
    ]
    by_rule = numba_alerts_by_rule(rules, records)
    assert by_rule[0] == by_rule[1] and len(by_rule[0]) >= 3
