"""Random SQL rules in the NFA subset, and running one rule on either engine.

`rule_text` draws (`subset_rule` under hypothesis) a MATCH_RECOGNIZE query whose parse is unique: a concatenation of up
to four variables with random quantifiers (greedy or reluctant; the last one a fixed count),
DEFINE conditions that give each variable its own band of `x` values (written as `=`, IN,
BETWEEN, `<`/`>=` pairs, or `x IS NULL`), anded with constraints that do not matter for
disjointness (on `y`, `kind`, and with `history`, reads of earlier variables' rows), random
MEASURES, sometimes a SELECT list, WITHIN, NOT FOLLOWED BY and either skip strategy.
`events_for` draws events that often walk through the pattern (matches are rare otherwise);
`matches` runs a compiled rule set over events in batches and returns the alerts per key.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

from hypothesis import strategies as st

from cep.compiler import CompiledRules
from cep.loader import load_text
from nfa.batch import StringPool, batch_from_records
from nfa.results import EngineOutput

STREAM = (
    "stream s key k time ts out_of_order 1s "
    "fields { k: string, x: int, y: float, kind: string, ts: timestamp }"
)
QUANTIFIERS = ["", "?", "*", "+", "{2}", "{1,3}", "{2,}", "{0,2}", "+?", "*?", "??", "{1,3}?"]
LAST_QUANTIFIERS = ["", "{2}"]
VALUES = 6  # x is drawn from 0..5 (or null)

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


def _measures(rng: random.Random, names: list[str]) -> list[str]:
    options = ["count(*) AS n", "CLASSIFIER() AS c", "x AS last_x", "count(x) AS xs"]
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


def rule_text(rng: random.Random, history: bool = True) -> tuple[str, list[list[int | None]]]:
    """The YAML text of one stream and one SQL rule `r` in the NFA subset, and the `x`
    values of each variable's band in pattern order (for `events_for`)."""
    n = rng.randint(1, 4)
    names = list("ABCD"[:n])
    quantifiers = [rng.choice(QUANTIFIERS) for _ in range(n - 1)]
    quantifiers.append(rng.choice(LAST_QUANTIFIERS))
    cuts = sorted(rng.sample(range(1, VALUES), n - 1))
    bands = list(itertools.pairwise([0, *cuts, VALUES]))
    rng.shuffle(bands)
    null_band = rng.choice([None, None, *range(n)])
    defines = []
    values: list[list[int | None]] = []
    for i, name in enumerate(names):
        low, high = bands[i]
        condition = "x IS NULL" if i == null_band else _band(rng, low, high)
        values.append([None] if i == null_band else list(range(low, high)))
        extra = _extra(rng, name, names[:i], history)
        if extra is not None:
            condition = f"{condition} AND {extra}"
        defines.append(f"{name} AS {condition}")
    pattern = " ".join(f"{v}{q}" for v, q in zip(names, quantifiers, strict=True))
    within = rng.choice(["", "2", "4"])
    if within and rng.random() < 0.5:
        pattern += " NOT FOLLOWED BY Z"
        absent = rng.choice(["x = 1", "kind = 'b'", "y > 2.0", f"x = {names[0]}.x"])
        if quantifiers[-1]:  # counted twice: Z must be disjoint from the last variable
            others = [f"x = {v}" for v in range(VALUES) if v not in values[-1]]
            absent = rng.choice(others or ["x IS NULL"])
        defines.append(f"Z AS {absent}")
    measures = _measures(rng, names)
    select = "*"
    if rng.random() < 0.25:
        measures.append("count(*) AS total")
        select = "k, total * 2 AS doubled, total"
    skip = rng.choice(["PAST LAST ROW", "TO NEXT ROW"])
    query = (
        f"SELECT {select} FROM s MATCH_RECOGNIZE (\n"
        "  PARTITION BY k ORDER BY ts\n"
        f"  MEASURES {', '.join(measures)}\n"
        f"  AFTER MATCH SKIP {skip}\n"
        f"  PATTERN ({pattern})"
        + (f" WITHIN INTERVAL '{within}' SECOND" if within else "")
        + f"\n  DEFINE {', '.join(defines)}\n)"
    )
    body = "\n".join("      " + line for line in query.splitlines())
    return f"streams: |\n  {STREAM}\nrules:\n  - name: r\n    sql: |\n{body}\n", values


def subset_rule(history: bool = True) -> st.SearchStrategy[tuple[str, list[list[int | None]]]]:
    """`rule_text` with hypothesis's (shrinkable) random choices."""
    return st.builds(rule_text, st.randoms(use_true_random=False), st.just(history))


@st.composite
def events_for(draw: st.DrawFn, bands: list[list[int | None]], max_size: int = 40) -> list[Event]:
    """Events whose `x` mostly walks each key through the variables' bands in pattern
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


def compile_both(text: str) -> tuple[CompiledRules, CompiledRules]:
    """The rule set with the rule on the NFA engine, and with it on the row-pattern one."""
    loaded = load_text(text, "r.yaml")
    return loaded.compile(), loaded.compile(sql_on_nfa=False)


Alert = tuple[tuple[tuple[str, int, int], ...], int, tuple[tuple[str, object], ...]]


def matches(
    engine: Any,
    names: tuple[str, ...],
    rules: CompiledRules,
    events: list[Event],
    cuts: list[int],
    advance: bool,
) -> dict[str, list[Alert]]:
    """Alerts per key, in emission order: (events as (stage, seq, ts), time, fields)."""
    pool, keys = StringPool(), StringPool()
    records = [
        ("s", {"k": f"k{k}", "x": x, "y": y, "kind": kind, "ts": 1_000_000 + i * 700 + jitter})
        for i, (k, x, y, kind, jitter) in enumerate(events)
    ]
    batch = batch_from_records(rules.schema, records, pool, keys)
    matcher = engine(pool)
    out = EngineOutput()
    bounds = sorted({0, len(events), *(c % (len(events) + 1) for c in cuts)})
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
