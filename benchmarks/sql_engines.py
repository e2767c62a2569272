"""SQL rules on their engines: the NFA engine (the proven subset), the jitted row-pattern
engine (SQL's preferred-match search in Numba kernels) and the Python row-pattern engine.

`python -m benchmarks.sql_engines [--events N] [--cards K] [--row-events N]`

The card-testing query `PATTERN (S{3,} B)` is in the subset (`cep.sql.nfa_subset`) and runs
on the NFA kernels; `PATTERN (S{3,} (B | C))` with overlapping B (> 500) and C (> 400)
is not (which branch SQL prefers matters), so it runs on the jitted row-pattern engine
(`nfa.rowpattern_jit`), and on the pure-Python one (the oracle) over a prefix, whose
matches must be the jitted engine's on the same prefix. All read the same card
transactions in time order, as columns in memory, in batches of 100,000, through the
engines' batch API.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from benchmarks.common import peak_rss_mb, report
from benchmarks.engine_card_testing import make_events
from cep.loader import load_text
from nfa.batch import EventBatch, StringPool
from nfa.engine import Engine
from nfa.rowpattern_jit import JitRowPatternEngine, kernel_supported
from nfa.rowpattern_stream import RowPatternEngine

RULES = """
streams: |
  stream txns key card_id time ts out_of_order 0s fields { card_id: string, amount: float, ts: timestamp }
rules:
  - name: QUERY
    emit_to: alerts
    sql: |
      SELECT * FROM txns MATCH_RECOGNIZE (
        PARTITION BY card_id ORDER BY ts
        MEASURES count(S.*) AS tests, LAST(ts) AS last_ts
        PATTERN (PATTERN_TEXT) WITHIN INTERVAL '10' MINUTE
        DEFINE S AS S.amount < 5.00, B AS B.amount > 500.00, C AS C.amount > 400.00
      )
"""


def _timed(engine: Any, events: EventBatch, batch: int) -> tuple[float, list[Any]]:
    started, matches = time.perf_counter(), []
    for lo in range(0, len(events), batch):
        matches += engine.process(events.slice(lo, min(lo + batch, len(events)))).matches
    matches += engine.finish().matches
    return time.perf_counter() - started, matches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--cards", type=int, default=100_000)
    parser.add_argument("--row-events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=100_000)
    args = parser.parse_args()
    subset = load_text(
        RULES.replace("QUERY", "subset").replace("PATTERN_TEXT", "S{3,} B"), "s.yaml"
    ).compile()
    other = load_text(
        RULES.replace("QUERY", "other").replace("PATTERN_TEXT", "S{3,} (B | C)"), "o.yaml"
    ).compile()
    assert [p.info.name for p in subset.programs] == ["subset"] and not subset.sql_programs
    assert not other.programs and len(other.sql_programs) == 1
    pool = StringPool()
    events = make_events(args.events, args.cards, pool)
    assert kernel_supported(other.sql_programs[0])
    nfa = Engine(subset.programs, pool)
    nfa_s, nfa_matches = _timed(nfa, events, args.batch)
    started = time.perf_counter()
    jit = JitRowPatternEngine(other.sql_programs, pool)
    jit_build_s = time.perf_counter() - started
    jit_s, jit_matches = _timed(jit, events, args.batch)
    head = events.slice(0, min(args.row_events, len(events)))
    rows = RowPatternEngine(other.sql_programs, pool)
    rows_s, rows_matches = _timed(rows, head, args.batch)
    _, jit_head = _timed(JitRowPatternEngine(other.sql_programs, pool), head, args.batch)
    assert jit_head == rows_matches, "the jitted engine differs from the Python one"
    figures = {
        "events": len(events),
        "cards": args.cards,
        "subset_query": "PATTERN (S{3,} B) WITHIN 10 MINUTE",
        "subset_engine": "nfa (Numba)",
        "subset_events_per_s": round(len(events) / nfa_s),
        "subset_matches": len(nfa_matches),
        "other_query": "PATTERN (S{3,} (B | C)) WITHIN 10 MINUTE, B and C overlap",
        "other_jit_events_per_s": round(len(events) / jit_s),
        "other_jit_matches": len(jit_matches),
        "other_jit_build_s": round(jit_build_s, 2),
        "other_python_events": len(head),
        "other_python_events_per_s": round(len(head) / rows_s),
        "other_python_matches": len(rows_matches),
        "other_jit_equals_python_on_prefix": True,
        "peak_rss_mb": peak_rss_mb(),
    }
    report("sql_engines", figures)


if __name__ == "__main__":
    main()
