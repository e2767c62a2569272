"""SQL rules for the differential tests of the jitted row pattern engine.

`RULES` is a fixed list: every distinct rule costs a Numba compile of several seconds, so
the list is short and each rule is compiled (to a `SqlProgram`) once per session by
`programs`; every engine of a session is built from those same `SqlProgram` objects. All
rules read the streams of `STREAMS` (declared once, so any rules can share an engine):
`s` (x: int 0..5, y: float, kind: 'a'/'b'/'c', ok: bool, all nullable; out of order 1s) and
`t` (v: int -1..3, code: 'open'/'buy'/'sell'/'close'; out of order 500ms). `EXTENSIONS`
(NOT FOLLOWED BY, ALL ROWS PER MATCH) are part of `RULES`; `REFUSED` are rules the jitted
engine leaves to the Python one (`kernel_supported` is false).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from cep.loader import load_text
from nfa.rowpattern_rule import SqlProgram

STREAMS = """\
stream s key k time ts out_of_order 1s
  fields { k: string, x: int, y: float, kind: string, ok: bool, ts: timestamp }
stream t key k time ts out_of_order 500ms
  fields { k: string, v: int, code: string, ts: timestamp }
"""


@dataclass(frozen=True)
class Rule:
    name: str
    covers: str  # what the rule is there to exercise
    query: str


RULES: tuple[Rule, ...] = (
    Rule(
        "past_last",
        "SKIP PAST LAST ROW, WITHIN, a greedy loop, a running sum in DEFINE, FIRST/LAST with "
        "offsets and sum/avg/count in MEASURES",
        """
        SELECT * FROM s MATCH_RECOGNIZE (
          PARTITION BY k ORDER BY ts
          MEASURES FIRST(A.ts) AS start, count(B.*) AS nb, sum(B.x) AS total,
                   avg(B.y) AS avg_y, LAST(B.x, 1) AS prev_b, FIRST(B.y, 1) AS second_y
          ONE ROW PER MATCH
          AFTER MATCH SKIP PAST LAST ROW
          PATTERN (A B+ C) WITHIN INTERVAL '5' SECOND
          DEFINE A AS x <= 1,
                 B AS x >= 1 AND sum(B.x) <= 9,
                 C AS C.x < LAST(B.x) OR C.kind = 'b'
        )
        """,
    ),
    Rule(
        "to_next",
        "SKIP TO NEXT ROW, a reluctant loop, an alternative that matches empty (no alert, "
        "but MATCH_NUMBER() counts it), CLASSIFIER(), MATCH_NUMBER(), min/max, no WITHIN",
        """
        SELECT * FROM s MATCH_RECOGNIZE (
          PARTITION BY k ORDER BY ts
          MEASURES MATCH_NUMBER() AS mn, CLASSIFIER() AS cls, count(*) AS n,
                   min(x) AS lo, max(y) AS hi
          AFTER MATCH SKIP TO NEXT ROW
          PATTERN (A B*? C | D*)
          DEFINE A AS x IS NOT NULL, B AS y > 1.0 OR y IS NULL, C AS x > A.x, D AS x = 5
        )
        """,
    ),
    Rule(
        "to_first",
        "SKIP TO FIRST B (failing when the match has no B), a quantified alternation of "
        "overlapping variables that DEFINE makes backtrack, LAST with an offset",
        """
        SELECT * FROM s MATCH_RECOGNIZE (
          PARTITION BY k ORDER BY ts
          MEASURES CLASSIFIER() AS last_cls, FIRST(B.x) AS fb, count(C.*) AS nc,
                   LAST(x, 2) AS x2
          AFTER MATCH SKIP TO FIRST B
          PATTERN (A (B | C)+ D) WITHIN INTERVAL '4' SECOND
          DEFINE A AS kind = 'a', B AS x >= 2, C AS x >= 1,
                 D AS (x = 0 OR x IS NULL) AND count(C.*) >= 1
        )
        """,
    ),
    Rule(
        "to_last",
        "SKIP TO LAST A (failing when it is the first row), nested groups (A B+)+, PREV with "
        "an offset in DEFINE under COALESCE, PREV(FIRST(..)) in MEASURES",
        """
        SELECT * FROM s MATCH_RECOGNIZE (
          PARTITION BY k ORDER BY ts
          MEASURES count(A.*) AS na, count(B.*) AS nb, LAST(A.y) AS ly,
                   PREV(FIRST(A.x), 1) AS before
          AFTER MATCH SKIP TO LAST A
          PATTERN ((A B+)+ C) WITHIN INTERVAL '6' SECOND
          DEFINE A AS x < 2,
                 B AS x >= 2 AND x >= COALESCE(PREV(x, 2), 0) - 1,
                 C AS x IS NULL OR kind IN ('b', 'c')
        )
        """,
    ),
    Rule(
        "to_var",
        "SKIP TO B (= TO LAST B), exclusion {- -}, NEXT with offsets in DEFINE and MEASURES "
        "(matches wait for rows)",
        """
        SELECT * FROM s MATCH_RECOGNIZE (
          PARTITION BY k ORDER BY ts
          MEASURES FIRST(A.x) AS ax, count(*) AS n, LAST(B.ts) AS lb, C.y AS cy,
                   NEXT(C.x) AS after_c
          AFTER MATCH SKIP TO B
          PATTERN (A {- B+ -} C) WITHIN INTERVAL '5' SECOND
          DEFINE A AS x >= 3,
                 B AS x < 3 AND NEXT(x) IS NOT NULL,
                 C AS C.x > 2 OR NEXT(C.x, 2) = 3
        )
        """,
    ),
    Rule(
        "anchor_start",
        "the ^ anchor in one branch of an alternation (the first row the engine ever saw of "
        "the key), MATCH_NUMBER()",
        """
        SELECT * FROM s MATCH_RECOGNIZE (
          PARTITION BY k ORDER BY ts
          MEASURES MATCH_NUMBER() AS mn, count(*) AS n, sum(x) AS sx
          AFTER MATCH SKIP PAST LAST ROW
          PATTERN (^ A+ B | B C)
          DEFINE A AS x < 3, B AS x >= 2, C AS kind <> 'a'
        )
        """,
    ),
    Rule(
        "anchor_end",
        "the $ anchor after a reluctant loop, decided when the window closes",
        """
        SELECT * FROM s MATCH_RECOGNIZE (
          PARTITION BY k ORDER BY ts
          MEASURES FIRST(x) AS fx, LAST(x) AS lx, count(*) AS n
          AFTER MATCH SKIP PAST LAST ROW
          PATTERN (A B*? $) WITHIN INTERVAL '3' SECOND
          DEFINE A AS kind = 'a', B AS x > 0
        )
        """,
    ),
    Rule(
        "permute",
        "PERMUTE of overlapping variables, bool_and/bool_or (of a bool column and of a "
        "comparison)/arbitrary, FIRST of a timestamp",
        """
        SELECT * FROM s MATCH_RECOGNIZE (
          PARTITION BY k ORDER BY ts
          MEASURES CLASSIFIER() AS c, count(*) AS n, FIRST(A.ts) AS ta,
                   bool_and(y > 1.0) AS all_big, bool_or(B.ok) AS any_ok, arbitrary(C.y) AS cy
          AFTER MATCH SKIP TO NEXT ROW
          PATTERN (PERMUTE(A, B, C)) WITHIN INTERVAL '3' SECOND
          DEFINE A AS x <= 1, B AS x = 2 OR kind = 'b', C AS x >= 2
        )
        """,
    ),
    Rule(
        "nulls_div",
        "a SELECT list, division by zero in DEFINE (false, also under AND) and in MEASURES "
        "(null), integer / and % of negatives, IF, COALESCE, NOT, IN, IS NULL, <>, bounded "
        "and optional greedy loops",
        """
        SELECT k, n * 2 AS doubled, half, tag, ratio, m, lb AS fallback FROM s MATCH_RECOGNIZE (
          PARTITION BY k ORDER BY ts
          MEASURES count(*) AS n, (FIRST(x) - 3) / 2 AS half, IF(LAST(kind) = 'a', 1, 2) AS tag,
                   LAST(x) / (LAST(x) - 2) AS ratio, COALESCE(LAST(B.y), -1.0) AS lb,
                   (LAST(x) - 4) % 3 AS m
          AFTER MATCH SKIP PAST LAST ROW
          PATTERN (A B{1,3} C?)
          DEFINE A AS 10 / x > 3,
                 B AS y IS NULL OR NOT (kind IN ('a', 'b')),
                 C AS kind <> 'a' AND 6 % x = 0
        )
        """,
    ),
    Rule(
        "t_codes",
        "the second stream, string = and IN, a reluctant loop, aggregates of the loop read "
        "by the next variable, a string measure",
        """
        SELECT * FROM t MATCH_RECOGNIZE (
          PARTITION BY k ORDER BY ts
          MEASURES FIRST(P.code) AS first_code, count(Q.*) AS nq, sum(Q.v) AS sv,
                   LAST(Q.v, 1) AS q_prev, R.code AS end_code
          AFTER MATCH SKIP TO NEXT ROW
          PATTERN (P Q+? R) WITHIN INTERVAL '5' SECOND
          DEFINE P AS code = 'open' OR v < 0,
                 Q AS code IN ('buy', 'sell') OR v > 1,
                 R AS code <> 'buy' AND v >= sum(Q.v) OR code = 'close'
        )
        """,
    ),
    Rule(
        "navigation",
        "PREV/NEXT with offsets in DEFINE (NEXT waits for rows), FIRST/LAST with offsets in "
        "DEFINE, RUNNING/FINAL, NEXT(LAST(..)) and PREV with an offset in MEASURES, a "
        "reluctant {2,}?",
        """
        SELECT * FROM s MATCH_RECOGNIZE (
          PARTITION BY k ORDER BY ts
          MEASURES FINAL LAST(B.x) AS final_b, RUNNING LAST(B.x) AS running_b,
                   FINAL count(B.*) AS fnb, NEXT(LAST(x), 1) AS after, PREV(A.y, 2) AS back2,
                   FIRST(B.x, 1) AS b2
          AFTER MATCH SKIP PAST LAST ROW
          PATTERN (A B{2,}? C)
          DEFINE A AS PREV(x) IS NULL OR x > PREV(x),
                 B AS x >= FIRST(B.x) AND (LAST(B.x, 1) IS NULL OR x >= LAST(B.x, 1) - 1),
                 C AS NEXT(x) > x OR NEXT(x, 2) IS NULL
        )
        """,
    ),
    Rule(
        "aggregates",
        "running avg/count/max/min in DEFINE (nulls skipped), a greedy {2,}, avg, count of a "
        "column, max - min and a sum over all rows in MEASURES",
        """
        SELECT * FROM s MATCH_RECOGNIZE (
          PARTITION BY k ORDER BY ts
          MEASURES avg(A.y) AS ay, max(A.x) - min(A.x) AS spread, count(A.y) AS ny,
                   sum(y) AS sy
          AFTER MATCH SKIP PAST LAST ROW
          PATTERN (A{2,} B) WITHIN INTERVAL '4' SECOND
          DEFINE A AS COALESCE(avg(A.y), 0.0) < 2.5 AND count(A.*) <= 4,
                 B AS B.y > avg(A.y) AND max(A.x) >= 2
        )
        """,
    ),
    Rule(
        "alternation",
        "an alternation (B | C) of overlapping variables whose choice a later DEFINE reads "
        "(PREV(CLASSIFIER())), CLASSIFIER() in DEFINE, a bool column as condition, "
        "LAST(CLASSIFIER(), 1)",
        """
        SELECT * FROM s MATCH_RECOGNIZE (
          PARTITION BY k ORDER BY ts
          MEASURES CLASSIFIER() AS last_cls, LAST(CLASSIFIER(), 1) AS mid_cls, count(*) AS n,
                   MATCH_NUMBER() AS mn
          AFTER MATCH SKIP TO NEXT ROW
          PATTERN (A (B | C) D+?) WITHIN INTERVAL '4' SECOND
          DEFINE A AS ok OR kind = 'c',
                 B AS x >= 2,
                 C AS x >= 1 OR ok IS NULL,
                 D AS (PREV(CLASSIFIER()) = 'C' AND x < 2)
                   OR (CLASSIFIER() = 'D' AND PREV(CLASSIFIER()) IN ('B', 'D') AND y >= 1.0)
        )
        """,
    ),
)

#: The streaming extension and ALL ROWS PER MATCH (the kernels run them too).
EXTENSIONS: tuple[Rule, ...] = (
    Rule(
        "absence",
        "NOT FOLLOWED BY with a condition reading the match, decided when the window closes",
        """
        SELECT * FROM s MATCH_RECOGNIZE (
          PARTITION BY k ORDER BY ts
          MEASURES FIRST(A.x) AS ax, count(B.*) AS nb, LAST(B.y) AS last_y
          AFTER MATCH SKIP PAST LAST ROW
          PATTERN (A B{1,2} NOT FOLLOWED BY C) WITHIN INTERVAL '3' SECOND
          DEFINE A AS x >= 3, B AS x < 3, C AS C.x = A.x AND kind = 'c'
        )
        """,
    ),
    Rule(
        "all_rows",
        "ALL ROWS PER MATCH: RUNNING and FINAL measures per row, the rows' fields",
        """
        SELECT * FROM s MATCH_RECOGNIZE (
          PARTITION BY k ORDER BY ts
          MEASURES count(*) AS n, FINAL count(*) AS total, CLASSIFIER() AS cls,
                   sum(B.x) AS sb, FINAL LAST(B.y) AS last_y, MATCH_NUMBER() AS mn
          ALL ROWS PER MATCH
          AFTER MATCH SKIP TO NEXT ROW
          PATTERN (A B+ C?) WITHIN INTERVAL '3' SECOND
          DEFINE A AS x <= 2, B AS x > A.x, C AS kind = 'c'
        )
        """,
    ),
)

RULES = (*RULES, *EXTENSIONS)

#: Rules the jitted engine refuses, by what makes them refused. (A SELECT list is computed
#: over the measures by Python in both engines, so string functions are fine there.)
REFUSED: dict[str, str] = {
    "all_rows_exclusion": """
        SELECT * FROM s MATCH_RECOGNIZE (
          PARTITION BY k ORDER BY ts
          MEASURES count(*) AS n
          ALL ROWS PER MATCH
          PATTERN (A {- B+ -} C) WITHIN INTERVAL '3' SECOND
          DEFINE A AS x = 1, B AS x > 1, C AS x = 0
        )
    """,
    "like": """
        SELECT * FROM s MATCH_RECOGNIZE (
          PARTITION BY k ORDER BY ts
          MEASURES count(*) AS n
          PATTERN (A B) WITHIN INTERVAL '3' SECOND
          DEFINE A AS kind LIKE 'a%', B AS x > 1
        )
    """,
    "lower": """
        SELECT * FROM s MATCH_RECOGNIZE (
          PARTITION BY k ORDER BY ts
          MEASURES count(*) AS n
          PATTERN (A B) WITHIN INTERVAL '3' SECOND
          DEFINE A AS lower(kind) = 'a', B AS x > 1
        )
    """,
    "upper_measure": """
        SELECT * FROM s MATCH_RECOGNIZE (
          PARTITION BY k ORDER BY ts
          MEASURES upper(LAST(kind)) AS big_kind
          PATTERN (A B) WITHIN INTERVAL '3' SECOND
          DEFINE A AS x = 1, B AS x > 1
        )
    """,
    "length": """
        SELECT * FROM t MATCH_RECOGNIZE (
          PARTITION BY k ORDER BY ts
          MEASURES count(*) AS n
          PATTERN (P Q) WITHIN INTERVAL '3' SECOND
          DEFINE P AS length(code) = 4, Q AS v > 1
        )
    """,
    "concat_operator": """
        SELECT * FROM s MATCH_RECOGNIZE (
          PARTITION BY k ORDER BY ts
          MEASURES count(*) AS n
          PATTERN (A B) WITHIN INTERVAL '3' SECOND
          DEFINE A AS kind || 'x' = 'ax', B AS x > 1
        )
    """,
    "concat_function": """
        SELECT * FROM s MATCH_RECOGNIZE (
          PARTITION BY k ORDER BY ts
          MEASURES concat(FIRST(kind), LAST(kind)) AS kinds
          PATTERN (A B) WITHIN INTERVAL '3' SECOND
          DEFINE A AS x = 1, B AS x > 1
        )
    """,
    "string_less": """
        SELECT * FROM s MATCH_RECOGNIZE (
          PARTITION BY k ORDER BY ts
          MEASURES count(*) AS n
          PATTERN (A B) WITHIN INTERVAL '3' SECOND
          DEFINE A AS kind < 'b', B AS x > 1
        )
    """,
    "string_order_navigation": """
        SELECT * FROM t MATCH_RECOGNIZE (
          PARTITION BY k ORDER BY ts
          MEASURES count(*) AS n
          PATTERN (P Q) WITHIN INTERVAL '3' SECOND
          DEFINE P AS v > 0, Q AS code >= P.code
        )
    """,
    "string_between": """
        SELECT * FROM s MATCH_RECOGNIZE (
          PARTITION BY k ORDER BY ts
          MEASURES count(*) AS n
          PATTERN (A B) WITHIN INTERVAL '3' SECOND
          DEFINE A AS kind BETWEEN 'a' AND 'b', B AS x > 1
        )
    """,
    "string_max": """
        SELECT * FROM s MATCH_RECOGNIZE (
          PARTITION BY k ORDER BY ts
          MEASURES max(A.kind) AS top_kind
          PATTERN (A+ B) WITHIN INTERVAL '3' SECOND
          DEFINE A AS x = 1, B AS x > 1
        )
    """,
    "string_min_define": """
        SELECT * FROM s MATCH_RECOGNIZE (
          PARTITION BY k ORDER BY ts
          MEASURES count(*) AS n
          PATTERN (A+ B) WITHIN INTERVAL '3' SECOND
          DEFINE A AS x = 1, B AS min(A.kind) = 'a'
        )
    """,
}


def _yaml(rules: dict[str, str]) -> str:
    """A YAML rule file of `STREAMS` and the SQL rules `name: query`."""
    lines = ["streams: |", *(f"  {line}" for line in STREAMS.splitlines()), "rules:"]
    for name, query in rules.items():
        lines += [f"  - name: {name}", "    sql: |"]
        lines += [f"      {line.strip()}" for line in query.strip().splitlines()]
    return "\n".join(lines) + "\n"


def _compiled(rules: dict[str, str], file: str) -> dict[str, SqlProgram]:
    compiled = load_text(_yaml(rules), file).compile(sql_on_nfa=False)
    return {p.info.name: p for p in compiled.sql_programs}


@cache
def _supported() -> dict[str, SqlProgram]:
    return _compiled({r.name: r.query for r in RULES}, "jit_rules.yaml")


def programs(*names: str) -> tuple[SqlProgram, ...]:
    """The compiled rules `names`, in that order: the same objects every time."""
    compiled = _supported()
    return tuple(compiled[n] for n in names)


@cache
def refused() -> dict[str, SqlProgram]:
    """`REFUSED` compiled (against the same streams)."""
    return _compiled(REFUSED, "refused.yaml")
