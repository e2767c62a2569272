"""The jitted row pattern engine (`nfa.rowpattern_jit`) against the Python one.

Differential: the SQL rules of `jit_rules.RULES` (each alone, and several in one engine
over both streams) run on `JitRowPatternEngine` and on `RowPatternEngine` over the same
random event streams (a few keys, values in small ranges so that patterns match, nulls,
times out of order and some late), cut into random batches, with random
`advance_watermark` calls and `finish()`; the jitted engine is snapshotted and restored at
random points while the Python engine runs uninterrupted. Every call's output (matches with
their events, time and fields; late events) and the counters must be equal, with the same
value types (an alert shows 2, 2.0 and true differently). Also processing-time mode, a
restore into a changed rule set (`keep`), and which rules `kernel_supported` accepts.

Hypothesis draws a seed and a length for each stream (`random_records`), the batch cuts,
the watermark advances and the restores; shrinking the length cuts the stream short, and a
failing example prints its records. Each scenario asserts that a share of its examples had
matches, so it cannot pass vacuously.

Each rule costs a Numba compile: every engine is built from the same `SqlProgram` objects
(`jit_rules.programs`). Set CEP_HYPOTHESIS_EXAMPLES to run more (or fewer) examples per
scenario.
"""

from __future__ import annotations

import itertools
import os
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import fields, is_dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings, target
from hypothesis import strategies as st
from jit_rules import REFUSED, RULES, programs, refused

from nfa.batch import StringPool, batch_from_records
from nfa.migrate import CarryOver
from nfa.reference import EngineConfig
from nfa.results import EngineOutput
from nfa.rowpattern import Op
from nfa.rowpattern_expr import Agg, Call, Classifier, MatchNumber, Nav, RExpr
from nfa.rowpattern_jit import JitRowPatternEngine, kernel_supported
from nfa.rowpattern_rule import SqlProgram
from nfa.rowpattern_run import Skip
from nfa.rowpattern_stream import RowPatternEngine

EXAMPLES = int(os.environ.get("CEP_HYPOTHESIS_EXAMPLES", "25"))
MAX_EVENTS = 60
BASE, STEP = 1_000_000, 250  # event i's time: BASE + i * STEP (+ jitter), in ms
#: Several rules in one engine, over both streams.
MULTI = ("past_last", "nulls_div", "t_codes", "to_last")
#: The rule set restored from MULTI's snapshot, and the old rule each new one continues.
MIGRATED = ("t_codes", "to_last", "past_last", "anchor_start")
KEEP: CarryOver = [2, 3, 0, None]
#: The rules of an engine, and how many events in 4 are of stream `t`.
SCENARIOS: dict[str, tuple[tuple[str, ...], int]] = {
    **{r.name: ((r.name,), 3 if r.name == "t_codes" else 1) for r in RULES},
    "several_rules_two_streams": (MULTI, 2),
}
PROCESSING_TIME = ("past_last", "to_next", "alternation", "several_rules_two_streams")
#: At least this share of a scenario's examples have matches (usually 0.6 to 0.9).
LEAST_MATCHING = 0.2
HYPOTHESIS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: Field values in small ranges, so that patterns match; 0.1 makes float sums depend on
#: the order of addition.
S_VALUES: dict[str, list[Any]] = {
    "x": [0, 1, 2, 3, 4, 5, None],
    "y": [0.1, 0.5, 1.0, 2.0, 2.5, 3.0, None],
    "kind": ["a", "b", "c", None],
    "ok": [True, False, None],
}
T_VALUES: dict[str, list[Any]] = {
    "v": [-1, 0, 1, 2, 3, None],
    "code": ["open", "buy", "sell", "close", None],
}
Record = tuple[str, dict[str, Any]]
#: Every string of the events, interned in this order into each example's new pool: the
#: jitted engine compiles the pool ids of a rule's strings into its kernel, so ids that
#: vary between examples would compile each rule again and again.
STRINGS = ("k0", "k1", "k2", "a", "b", "c", "open", "buy", "sell", "close")


def random_records(rng: random.Random, n: int, t_share: int, processing_time: bool) -> list[Record]:
    """`n` events, of `t` `t_share` times in 4, else of `s`. Each stream has its own number
    of keys (k0 has half the events or more) and share of events out of order (up to 1.6s
    back, so some are late: the watermark lags 1s on `s`, 500ms on `t`). In processing
    time, times never decrease (ties are common), as arrival times.

    Plain `random`, not hypothesis strategies, for the events: hypothesis spends much of a
    small budget on variants of a few examples, and whole runs then found no match.
    """
    keys = rng.choice([1, 2, 3])
    disorder = rng.choice([0.0, 0.25, 0.5])
    clock = BASE
    out: list[Record] = []
    for i in range(n):
        stream, values = ("t", T_VALUES) if rng.randrange(4) < t_share else ("s", S_VALUES)
        record: dict[str, Any] = {name: rng.choice(choices) for name, choices in values.items()}
        record["k"] = f"k{0 if rng.random() < 0.5 else rng.randrange(keys)}"
        if processing_time:
            clock += rng.choice([0, 0, 100, 250, 600])
            record["ts"] = clock
        else:
            jitter = rng.randint(-16, 8) * 100 if rng.random() < disorder else 0
            record["ts"] = BASE + i * STEP + jitter
        out.append((stream, record))
    return out


def _typed(value: object) -> object:
    """`value` with each leaf's type name beside it."""
    if is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, *(_typed(getattr(value, f.name)) for f in fields(value)))
    if isinstance(value, list | tuple):
        return tuple(_typed(v) for v in value)
    return (type(value).__name__, value)


def _difference(got: Sequence[object], want: Sequence[object]) -> str:
    for i, (g, w) in enumerate(zip(got, want, strict=False)):
        if _typed(g) != _typed(w):
            return f"first difference at {i}:\n  jit:    {g!r}\n  python: {w!r}"
    return f"jit gave {len(got)}, python {len(want)}"


def _same(got: EngineOutput, want: EngineOutput, where: str) -> None:
    """Equal outputs, with equal value types (np.int64 or 1.0 where Python has 1 fail)."""
    assert _typed(got.matches) == _typed(want.matches), (
        f"{where}, matches: {_difference(got.matches, want.matches)}"
    )
    assert _typed(got.late) == _typed(want.late), (
        f"{where}, late events: {_difference(got.late, want.late)}"
    )
    assert got == want, where


def _counters(engine: Any) -> tuple[int, int, int]:
    c = engine.counters
    return (c.events_in, c.events_late, c.matches)


class Stats:
    """What the examples of one scenario found, to assert they are not vacuous."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def record(self, out: EngineOutput) -> None:
        # Hypothesis repeats streams (with other cuts): steer it to streams that match.
        target(float(len(out.matches)), label="matches")
        self.counts["examples"] += 1
        self.counts["with_matches"] += bool(out.matches)
        self.counts["matches"] += len(out.matches)
        self.counts["with_late"] += bool(out.late)

    def share(self, what: str) -> float:
        return self.counts[what] / max(self.counts["examples"], 1)


def _run(
    data: st.DataObject,
    rules: tuple[SqlProgram, ...],
    config: EngineConfig,
    t_share: int,
    migrate: tuple[tuple[SqlProgram, ...], CarryOver] | None = None,
    strings: Sequence[str] = STRINGS,
) -> EngineOutput:
    """Both engines over one drawn stream, every call's output compared; the Python
    engine's whole output. With `migrate`, both engines are restored into that rule set
    (`keep`) at a drawn batch boundary, each from its own snapshot."""
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    n = data.draw(st.integers(0, MAX_EVENTS), label="events")  # shrinking cuts the stream
    records = random_records(random.Random(seed), n, t_share, config.processing_time)
    note(f"records: {records}")
    pool, keys = StringPool(), StringPool()
    for string in strings:
        pool.intern(string)
    batch = batch_from_records(rules[0].schema, records, pool, keys)
    cuts = data.draw(st.lists(st.integers(0, n), max_size=6), label="cuts")
    bounds = [0, *sorted({0, n, *cuts})]  # the first batch is empty
    migrate_at = data.draw(st.integers(0, len(bounds) - 2), label="migrate at") if migrate else -1
    want = RowPatternEngine(rules, pool, config)
    got = JitRowPatternEngine(rules, pool, config)
    total = EngineOutput()
    latest = BASE
    for b, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        where = f"batch {b} (events {lo}..{hi})"
        if data.draw(st.sampled_from([False, False, True]), label=f"restore before {b}"):
            got = JitRowPatternEngine.restore(rules, pool, got.snapshot(), config)
        if b == migrate_at and migrate is not None:
            rules, keep = migrate
            want = RowPatternEngine.restore(rules, pool, want.snapshot(), config, keep)
            got = JitRowPatternEngine.restore(rules, pool, got.snapshot(), config, keep)
        part = batch.slice(lo, hi)
        expected = want.process(part)
        _same(got.process(part), expected, f"process, {where}")
        total.extend(expected)
        if hi > lo:
            latest = max(latest, int(part.ts.max()))
        advance = data.draw(
            st.none() | st.tuples(st.integers(0, 1), st.integers(-30, 15)), label=f"advance {b}"
        )
        if advance is not None:  # behind the data (no effect), or ahead (windows close)
            stream, delta = advance
            watermark = latest + delta * 100
            expected = want.advance_watermark(stream, watermark)
            _same(got.advance_watermark(stream, watermark), expected, f"advance, {where}")
            total.extend(expected)
        assert _counters(got) == _counters(want), f"counters, {where}"
    if data.draw(st.booleans(), label="restore before finish"):
        got = JitRowPatternEngine.restore(rules, pool, got.snapshot(), config)
    expected = want.finish()
    _same(got.finish(), expected, "finish")
    total.extend(expected)
    assert _counters(got) == _counters(want), "counters, finish"
    return total


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_jit_equals_python_engine(scenario: str) -> None:
    names, t_share = SCENARIOS[scenario]
    stats = Stats()

    @HYPOTHESIS
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        stats.record(_run(data, programs(*names), EngineConfig(), t_share))

    check()
    assert stats.share("with_matches") >= LEAST_MATCHING, stats.counts
    assert stats.counts["with_late"] > 0, stats.counts


@pytest.mark.parametrize("scenario", PROCESSING_TIME)
def test_jit_equals_python_engine_in_processing_time(scenario: str) -> None:
    names, t_share = SCENARIOS[scenario]
    stats = Stats()

    @settings(HYPOTHESIS, max_examples=max(EXAMPLES // 2, 5))
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        config = EngineConfig(processing_time=True)
        stats.record(_run(data, programs(*names), config, t_share))

    check()
    assert stats.share("with_matches") >= LEAST_MATCHING, stats.counts
    assert stats.counts["with_late"] == 0, stats.counts


def test_jit_restores_into_a_changed_rule_set() -> None:
    stats = Stats()

    @settings(HYPOTHESIS, max_examples=max(EXAMPLES // 2, 5))
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        migrate = (programs(*MIGRATED), KEEP)
        stats.record(_run(data, programs(*MULTI), EngineConfig(), 2, migrate))

    check()
    assert stats.share("with_matches") >= LEAST_MATCHING, stats.counts


@pytest.mark.parametrize("scenario", ["t_codes", "alternation"])
def test_jit_does_not_depend_on_string_ids(scenario: str) -> None:
    """Strings interned in another order (one more compile per rule)."""
    names, t_share = SCENARIOS[scenario]
    stats = Stats()

    @settings(HYPOTHESIS, max_examples=max(EXAMPLES // 3, 5))
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        rules = programs(*names)
        stats.record(_run(data, rules, EngineConfig(), t_share, strings=STRINGS[::-1]))

    check()
    assert stats.share("with_matches") >= LEAST_MATCHING, stats.counts


@pytest.mark.parametrize("rule", [r.name for r in RULES])
def test_kernel_supports_every_rule_of_the_list(rule: str) -> None:
    (program,) = programs(rule)
    assert kernel_supported(program)


@pytest.mark.parametrize("rule", list(REFUSED))
def test_kernel_refuses_what_stays_on_the_python_engine(rule: str) -> None:
    assert not kernel_supported(refused()[rule])


def _exprs(program: SqlProgram, defines: bool, measures: bool) -> list[RExpr]:
    """Every node of the rule's DEFINE conditions and/or MEASURES (and SELECT list)."""
    todo: list[RExpr] = []
    if defines:
        todo += [d for d in program.query.program.defines if d is not None]
    if measures:
        todo += [*program.query.measures, *(e for _, e in program.select or ())]
    found: list[RExpr] = []
    while todo:
        expr = todo.pop()
        found.append(expr)
        if isinstance(expr, Nav):
            todo.append(expr.expr)
        elif isinstance(expr, Agg | Call):
            todo += expr.args
    return found


def test_the_rules_cover_what_the_jitted_engine_runs() -> None:
    """Guards edits of `jit_rules.RULES`: together they keep covering the constructs."""
    compiled = programs(*(r.name for r in RULES))
    ops = {i.op for p in compiled for i in p.query.program.code}
    assert {Op.START, Op.END, Op.BEGIN_EXCLUDE, Op.END_EXCLUDE} <= ops
    assert {p.query.skip for p in compiled} == set(Skip)
    assert {p.stream for p in compiled} == {0, 1}
    assert {p.within_ms is None for p in compiled} == {True, False}
    assert any(p.select is not None for p in compiled)
    in_defines = [e for p in compiled for e in _exprs(p, True, False)]
    in_measures = [e for p in compiled for e in _exprs(p, False, True)]
    for exprs in (in_defines, in_measures):
        navs = [e for e in exprs if isinstance(e, Nav)]
        assert any(n.physical_offset < -1 for n in navs)  # PREV(x, 2)
        assert any(n.physical_offset > 0 for n in navs)  # NEXT
        assert any(n.logical_offset > 0 and n.last for n in navs)  # LAST(x, 1)
        assert any(isinstance(e, Agg) for e in exprs)
        assert any(isinstance(e, Classifier) for e in exprs)
    navs = [e for e in in_measures if isinstance(e, Nav)]
    assert any(n.logical_offset > 0 and not n.last for n in navs)  # FIRST(x, 1)
    assert any(n.final for n in navs)
    assert any(isinstance(e, MatchNumber) for e in in_measures)
    functions = {e.func for e in in_defines + in_measures if isinstance(e, Agg)}
    assert functions >= {"count", "sum", "avg", "min", "max", "bool_and", "bool_or", "arbitrary"}
    calls = {e.op for e in in_defines + in_measures if isinstance(e, Call)}
    assert calls >= {"/", "%", "if", "coalesce", "is_null", "in", "not", "<>", "and", "or"}
