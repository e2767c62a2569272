"""Random SQL rules in the NFA subset, and running one rule on either engine.

`rule_text` draws (`subset_rule` under hypothesis) a MATCH_RECOGNIZE query in the subset:
a contiguous prefix of one to three elements, then up to two gaps, each a reluctant loop
(`X*?`, `X{0,3}?`) before its target (the prefix's last element may be the first gap's
greedy lead, `S+`, `S{2,}`). An element is a variable with a random quantifier (greedy or
reluctant) or an alternation `(B | C)` of two variables; the last element takes a fixed
number of rows (`B`, `B{2}`, a reluctant `B+?`, `B{2,}?`, `B{1,3}?`, an alternation).
DEFINE conditions give each variable of the prefix and each target its own band of `x`
values (written as `=`, IN, BETWEEN, `<`/`>=` pairs, or `x IS NULL`), anded with
constraints that do not matter for disjointness (on `y`, `kind`, and with `history`, reads
of earlier variables' rows); a gap accepts every row, or rows of its target's band and
others, or rows whatever their `x`. Then random MEASURES, sometimes a SELECT list, WITHIN,
NOT FOLLOWED BY and either skip strategy. `events_for` draws events that often walk
through the pattern (matches are rare otherwise); `matches` runs a compiled rule set over
events in batches and returns the alerts per key.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import strategies as st

from cep.compiler import CompiledRules
from cep.loader import load_text
from nfa.batch import StringPool, batch_from_records
from nfa.engine import Engine
from nfa.program import Program
from nfa.results import EngineOutput
from nfa.rowpattern_stream import RowPatternEngine

STREAM = (
    "stream s key k time ts out_of_order 1s "
    "fields { k: string, x: int, y: float, kind: string, ts: timestamp }"
)
QUANTIFIERS = ["", "?", "*", "+", "{2}", "{1,3}", "{2,}", "{0,2}", "+?", "*?", "??", "{1,3}?"]
LAST_QUANTIFIERS = ["", "{2}", "", "{2}", "+?", "{2,}?", "{1,3}?"]
GAP_QUANTIFIERS = ["*?", "*?", "{0,3}?"]
LEADS = ["+", "{2,}"]  # greedy loops before a gap that may take their rows
VALUES = 6  # x is drawn from 0..5 (or null)
ANY_X: list[int | None] = [None, *range(VALUES)]

#: An event: (key, x, y, kind, time jitter in ms).
Event = tuple[int, int | None, float | None, str | None, int]


def _band(rng: random.Random, low: int, high: int) -> str:
    """A condition that holds exactly for x in low..high-1, in one of several spellings."""
    forms = [f"x >= {low} AND x < {high}", f"x BETWEEN {low} AND {high - 1}"]
    forms.append("x IN (" + ", ".join(str(v) for v in range(low, high)) + ")")
    if high - low == 1:
        forms.append(f"x = {low}")
    if low == 0:
        forms.append(f"x < {high}")
    if high == VALUES:
        forms.append(f"{low} <= x")
    return rng.choice(forms)


def _extra(rng: random.Random, name: str, earlier: list[str], history: bool) -> str | None:
    """A conjunct that does not change which variables are disjoint."""
    options = ["y < 2.5", "y IS NOT NULL", "kind = 'a'", "(y > 1.0 OR kind = 'b')"]
    options.append(f"{name}.y <> 2.0")
    if history and earlier:
        w = rng.choice(earlier)
        options += [
            f"y >= {w}.y",
            f"count({w}.*) >= 2",
            f"FIRST({w}.x) <= x",
            f"sum({w}.x) < 6",
            f"{w}.y IS NULL",
            f"LAST({w}.kind) = kind",
            f"avg({w}.y) > 1.0",
            f"max({w}.x) - min({w}.x) < 2",
        ]
    if history:
        options.append(f"count({name}.*) <= 3")
    return rng.choice([None, None, *options])


def _measures(rng: random.Random, names: list[str], last_alternation: bool) -> list[str]:
    options = ["count(*) AS n", "count(x) AS xs", "count() AS n0"]
    if not last_alternation:  # which variable holds the last row varies
        options += ["CLASSIFIER() AS c", "x AS last_x"]
    for v in names:
        low = v.lower()
        options += [
            f"count({v}.*) AS n_{low}",
            f"FIRST({v}.x) AS first_{low}",
            f"LAST({v}.y) AS last_y_{low}",
            f"{v}.kind AS kind_{low}",
            f"sum({v}.x) AS sum_{low}",
            f"avg({v}.y) AS avg_{low}",
            f"min({v}.x) + max({v}.y) AS mm_{low}",
            f"{v}.x * 2 - 1 AS expr_{low}",
            f"FIRST({v}.ts) AS ts_{low}",
        ]
    return rng.sample(options, rng.randint(1, 4))


_OPTIONAL = ("?", "*", "{0,2}", "*?", "??", "{0,3}?")
#: A pattern element: its variables (two for an alternation) and its quantifier.
Element = tuple[list[str], str]


def _elements(rng: random.Random, n_prefix: int, n_gaps: int, gap_kind: str) -> list[Element]:
    """The prefix, then (gap, target) pairs. The first gap accepts every row, or rows
    whatever their x (`gap_kind` "true", "any": what is before it has a fixed count or is
    a greedy unbounded loop, its lead), or rows of no prefix variable's x band ("in": it
    is disjoint from them)."""
    letters = iter("ABCDEFGH")
    room = VALUES - n_prefix - n_gaps  # x bands left for second alternatives

    def variables() -> list[str]:
        nonlocal room
        two = room > 0 and rng.random() < 0.2
        room -= two
        return [next(letters) for _ in range(1 + two)]

    out: list[Element] = []
    for i in range(n_prefix):
        names = variables()
        if len(names) > 1:
            quantifier = ""
        elif i < n_prefix - 1 or (n_gaps and gap_kind == "in"):
            quantifier = rng.choice(QUANTIFIERS)
        else:  # the last element, or one before a gap that may take its rows
            quantifier = rng.choice(["", "{2}", *LEADS] if n_gaps else LAST_QUANTIFIERS)
        out.append((names, quantifier))
    for j in range(n_gaps):
        out.append((["XY"[j]], rng.choice(GAP_QUANTIFIERS) if j == 0 else "*?"))
        names = variables()
        last = j == n_gaps - 1 and len(names) == 1
        out.append((names, rng.choice(["", "", "+?", "{1,3}?"]) if last else ""))
    return out


def _gap_condition(
    rng: random.Random, kind: str, readable: list[str], values: str, history: bool
) -> str:
    """The DEFINE of the first gap X (see `_elements`): it may read the rows of `readable`
    (and its own, unless it has a lead); `values` are its targets' x values."""
    if kind == "true":
        return rng.choice(["", "X AS TRUE"])
    if kind == "in":
        return f"X AS x IN ({values})" + rng.choice(["", " AND y IS NOT NULL"])
    options = ["y < 2.5", "y IS NOT NULL", "kind = 'a' OR x = 3"]
    if history:
        options += ["count(X.*) <= 3", *(f"y >= {v}.y" for v in readable)]
    return f"X AS {rng.choice(options)}"


def rule_text(rng: random.Random, history: bool = True) -> tuple[str, list[list[int | None]]]:
    """The YAML text of one stream and one SQL rule `r` in the NFA subset, and the `x`
    values of each element in pattern order (for `events_for`)."""
    n_prefix, n_gaps = rng.randint(1, 3), rng.choice([0, 0, 1, 1, 2])
    gap_kind = rng.choice(["true", "any", "in"])
    elements = _elements(rng, n_prefix, n_gaps, gap_kind)
    prefix = [v for names, _ in elements[:n_prefix] for v in names]
    targets = [v for names, _ in elements[n_prefix + 1 :: 2] for v in names]
    banded = prefix + targets
    cuts = sorted(rng.sample(range(1, VALUES), len(banded) - 1))
    bands = list(itertools.pairwise([0, *cuts, VALUES]))
    rng.shuffle(bands)
    null_band = rng.choice([None, None, *(prefix if gap_kind == "in" else banded)])
    values: dict[str, list[int | None]] = {"X": ANY_X, "Y": ANY_X}
    for name, (low, high) in zip(banded, bands, strict=True):
        values[name] = [None] if name == null_band else list(range(low, high))
    # A lead's gap and its target read no rows of the lead or the gap, later targets none
    # of the lead.
    lead = elements[n_prefix - 1][1] in LEADS and n_gaps and gap_kind != "in"
    looped = [elements[n_prefix - 1][0][0], "X"] if lead else []
    defines = []
    for index, (names, _) in enumerate(elements):
        if names == ["X"]:
            target_values = ", ".join(str(x) for t in targets for x in values[t])
            readable = [v for v in prefix if v not in looped]
            x_history = history and not lead  # X reads its own rows but with a lead
            condition = _gap_condition(rng, gap_kind, readable, target_values, x_history)
            defines.append(condition)
            continue
        if names == ["Y"]:  # a later gap accepts every row
            defines.append(rng.choice(["", "Y AS TRUE"]))
            continue
        # A DEFINE reads the elements before it; targets after the first, only the prefix.
        readable = [v for n, _ in elements[:index] for v in n] if index <= n_prefix + 1 else prefix
        if index > n_prefix:  # targets read no rows of a lead
            readable = [v for v in readable if v not in looped]
        for name in names:
            low, high = bands[banded.index(name)]
            condition = "x IS NULL" if name == null_band else _band(rng, low, high)
            extra = _extra(rng, name, readable, history)
            if extra is not None:
                condition = f"{condition} AND {extra}"
            defines.append(f"{name} AS {condition}")
    defines = [d for d in defines if d]
    pattern = " ".join(
        (names[0] if len(names) == 1 else "(" + " | ".join(names) + ")") + quantifier
        for names, quantifier in elements
    )
    last_names, last_quantifier = elements[-1]
    within = rng.choice(["", "2", "4"])
    if within and rng.random() < 0.5:
        pattern += " NOT FOLLOWED BY Z"
        absent = rng.choice(["x = 1", "kind = 'b'", "y > 2.0", f"x = {prefix[0]}.x"])
        if last_quantifier in ("{2}", "{2,}?"):  # counted twice: Z disjoint from the last
            others = [f"x = {v}" for v in range(VALUES) if v not in values[last_names[0]]]
            absent = rng.choice(others or ["x IS NULL"])
        defines.append(f"Z AS {absent}")
    variables = [v for names, _ in elements for v in names]
    measures = _measures(rng, variables, len(last_names) > 1)
    select = "*"
    keyed = any(len(n) == 1 and n[0] not in "XY" and q not in _OPTIONAL for n, q in elements)
    if keyed and rng.random() < 0.25:  # the key is read on a variable every match has
        measures.append("count(*) AS total")
        select = "k, total * 2 AS doubled, total"
    skip = rng.choice(["PAST LAST ROW", "TO NEXT ROW"])
    within = f"WITHIN INTERVAL '{within}' SECOND" if within else ""
    text = sql_rule_text(pattern, ", ".join(defines), ", ".join(measures), skip, within, select)
    return text, [[x for v in names for x in values[v]] for names, _ in elements]


BROAD_QUANTIFIERS = ["", "", "?", "*", "+", "{2}", "{1,3}", "{2,}", "*?", "+?", "??", "{2,}?"]
BROAD_CONDITIONS = ["TRUE", "x = 0", "x = 1", "x < 2", "x >= 2", "x IN (1, 3)", "x IS NULL"]
BROAD_CONDITIONS += ["x <> 1", "y > 1.0"]
BROAD_X: list[int | None] = [None, 0, 1, 2, 3]  # few values: conditions overlap often


def _broad_elements(rng: random.Random) -> list[Element]:
    """Random elements; often the shape of gaps (a loop, maybe a greedy one, then reluctant
    loops before one-row elements, maybe something after them)."""
    letters = iter("ABCDEFGHIJKL")
    out: list[Element] = []
    if rng.random() < 0.4:
        for _ in range(rng.randint(2, 5)):
            two = rng.random() < 0.2
            names = [next(letters) for _ in range(1 + two)]
            out.append((names, "" if two else rng.choice(BROAD_QUANTIFIERS)))
        return out
    out.append(([next(letters)], rng.choice(["", "{2}", "+", "{2,}", "*"])))
    if rng.random() < 0.5:
        out.append(([next(letters)], rng.choice(["+", "{2,}", "*", "{1,3}", "+?"])))
    for _ in range(rng.choice([1, 1, 2])):
        out.append(([next(letters)], rng.choice(["*?", "*?", "{0,3}?"])))
        two = rng.random() < 0.2
        names = [next(letters) for _ in range(1 + two)]
        out.append((names, "" if two else rng.choice(["", "", "+?"])))
        if rng.random() < 0.15:
            out.append(([next(letters)], rng.choice(["", "+"])))
    return out


def broad_rule_text(rng: random.Random) -> str:
    """A rule of a broader space than `rule_text`'s -- any quantifiers, overlapping
    conditions, reads of any variable's rows -- that the subset accepts: rules are drawn
    until one runs on the NFA engine. So it tests the subset's decision itself."""
    while True:
        elements = _broad_elements(rng)
        names = [v for n, _ in elements for v in n]
        gaps = {n[0] for n, q in elements if q.endswith("?") and q.startswith(("*", "{0"))}
        defines = []
        for v in names:
            if rng.random() < (0.7 if v in gaps else 0.1):
                continue  # undefined: every row
            condition = rng.choice(BROAD_CONDITIONS)
            if rng.random() < 0.5:
                w = rng.choice(names)
                condition += rng.choice(
                    [
                        f" AND y > {w}.y",
                        f" AND count({w}.*) >= 2",
                        f" AND y >= max({w}.y)",
                        f" AND kind = {w}.kind",
                        f" AND count({v}.*) <= 2",
                        f" AND sum({w}.x) < 4",
                    ]
                )
            defines.append(f"{v} AS {condition}")
        pattern = " ".join(
            (n[0] if len(n) == 1 else "(" + " | ".join(n) + ")") + q for n, q in elements
        )
        within = rng.choice(["", "WITHIN INTERVAL '3' SECOND"])
        if within and rng.random() < 0.3:
            pattern += " NOT FOLLOWED BY Z"
            defines.append("Z AS " + rng.choice(["x = 3", "kind = 'b'", "x = 0"]))
        defines = defines or [f"{names[0]} AS TRUE"]
        measures = ["count(*) AS n", *(f"count({v}.*) AS n_{v.lower()}" for v in names[:3])]
        skip = rng.choice(["PAST LAST ROW", "TO NEXT ROW"])
        text = sql_rule_text(pattern, ", ".join(defines), ", ".join(measures), skip, within)
        choice = load_text(text, "r.yaml").compile().engine("r")
        if choice is not None and choice.engine == "nfa":
            return text


def subset_rule(history: bool = True) -> st.SearchStrategy[tuple[str, list[list[int | None]]]]:
    """`rule_text` with hypothesis's (shrinkable) random choices."""
    return st.builds(rule_text, st.randoms(use_true_random=False), st.just(history))


@st.composite
def events_for(draw: st.DrawFn, bands: list[list[int | None]], max_size: int = 40) -> list[Event]:
    """Events whose `x` mostly walks each key through the elements' `x` values in pattern
    order (staying, moving on, or jumping anywhere), so that matches are frequent."""
    cursor = [0, 0]
    out: list[Event] = []
    for _ in range(draw(st.integers(0, max_size))):
        key = draw(st.integers(0, 1))
        move = draw(st.sampled_from(["stay", "next", "next", "any", "restart"]))
        if move == "next":
            cursor[key] = (cursor[key] + 1) % len(bands)
        elif move == "any":
            cursor[key] = draw(st.integers(0, len(bands) - 1))
        elif move == "restart":
            cursor[key] = 0
        x = draw(st.sampled_from(bands[cursor[key]]))
        if draw(st.integers(0, 9)) == 0:
            x = draw(st.sampled_from([None, *range(VALUES)]))
        y = draw(st.sampled_from([None, 0.5, 1.0, 2.0, 3.0, 3.0]))
        kind = draw(st.sampled_from([None, "a", "a", "b"]))
        out.append((key, x, y, kind, draw(st.sampled_from([0, 0, 0, -1200, -300, 200, 600]))))
    return out


Alert = tuple[tuple[tuple[str, int, int], ...], int, tuple[tuple[str, object], ...]]


def sql_rule_text(
    pattern: str,
    define: str,
    measures: str = "count(*) AS n",
    skip: str = "PAST LAST ROW",
    within: str = "",
    select: str = "*",
) -> str:
    """The YAML text of the stream and one SQL rule `r` with these clauses."""
    query = (
        f"SELECT {select} FROM s MATCH_RECOGNIZE (\n"
        "  PARTITION BY k ORDER BY ts\n"
        f"  MEASURES {measures}\n"
        f"  AFTER MATCH SKIP {skip}\n"
        f"  PATTERN ({pattern}) {within}\n"
        f"  DEFINE {define}\n)"
    )
    body = "\n".join("      " + line for line in query.splitlines())
    return f"streams: |\n  {STREAM}\nrules:\n  - name: r\n    sql: |\n{body}\n"


def compile_both(text: str) -> tuple[CompiledRules, CompiledRules]:
    """The rule set with the rule on the NFA engine, and with it on the row-pattern one."""
    loaded = load_text(text, "r.yaml")
    return loaded.compile(), loaded.compile(sql_on_nfa=False)


def both_engines(
    data: st.DataObject, rule: tuple[str, list[list[int | None]]], cuts: list[int], advance: bool
) -> tuple[
    Program, Callable[[Callable[[StringPool], Any]], dict[str, list[Alert]]], dict[str, list[Alert]]
]:
    """The rule (`rule_text`'s result) as a program, a runner of it on an engine built over
    a string pool, and the row-pattern engine's alerts, over events drawn from `data`."""
    text, bands = rule
    events = data.draw(events_for(bands), label="events")
    on_nfa, on_rows = compile_both(text)
    assert [p.info.name for p in on_nfa.programs] == ["r"], on_nfa.warnings
    (program,) = on_nfa.programs
    (sql,) = on_rows.sql_programs

    def run(engine: Callable[[StringPool], Any]) -> dict[str, list[Alert]]:
        return matches(engine, program.stage_names, on_nfa, events, cuts, advance)

    rows = matches(
        lambda pool: RowPatternEngine([sql], pool), sql.stage_names, on_rows, events, cuts, advance
    )
    return program, run, rows


def matches(
    engine: Any,
    names: tuple[str, ...],
    rules: CompiledRules,
    events: Sequence[Event],
    cuts: list[int],
    advance: bool,
) -> dict[str, list[Alert]]:
    """Alerts per key, in emission order: (events as (stage, seq, ts), time, fields).

    The events go in batches cut at `cuts`; with `advance`, the watermark is moved to each
    batch's largest time after it (a later event at or below it is then late in both
    engines: a watermark never goes back).
    """
    pool, keys = StringPool(), StringPool()
    records = [
        ("s", {"k": f"k{k}", "x": x, "y": y, "kind": kind, "ts": 1_000_000 + i * 700 + jitter})
        for i, (k, x, y, kind, jitter) in enumerate(events)
    ]
    batch = batch_from_records(rules.schema, records, pool, keys)
    bounds = sorted({0, len(events), *(c % (len(events) + 1) for c in cuts)})
    matcher = engine(pool)
    out = EngineOutput()
    for lo, hi in itertools.pairwise(bounds):
        part = batch.slice(lo, hi)
        out.extend(matcher.process(part))
        if advance and hi > lo:
            out.extend(matcher.advance_watermark(0, int(part.ts.max())))
    out.extend(matcher.finish())
    found: dict[str, list[Alert]] = {}
    for m in out.matches:
        stages = tuple((names[e.stage], e.seq, e.ts) for e in m.events)
        found.setdefault(keys.value(m.key), []).append((stages, m.time, m.fields))
    return found


def numba_alerts_by_rule(
    rules: CompiledRules, records: list[tuple[str, dict[str, Any]]]
) -> dict[int, list[object]]:
    """(key, events, time, fields) of each match of rules 0 and 1 on the Numba engine."""
    pool, keys = StringPool(), StringPool()
    engine = Engine(rules.programs, pool)
    out = engine.process(batch_from_records(rules.schema, records, pool, keys))
    out.extend(engine.finish())
    by_rule: dict[int, list[object]] = {0: [], 1: []}
    for m in out.matches:
        by_rule[m.rule].append((m.key, m.events, m.time, m.fields))
    return by_rule
