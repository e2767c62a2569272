"""Greedy loops: a greedy loop cannot be left while events still satisfy it.

Ported from FlinkCEP's GreedyITCase (the current version, which emits one match per prefix
for a greedy loop at the end of a pattern).
"""

import pytest
from harness import bag, ev, evs, kind, matches, rule

from cep.errors import RuleCheckError

W = {"s": kind("c"), "m": kind("a"), "e": kind("d")}


def test_greedy_zero_or_more():
    # GreedyITCase.testGreedyZeroOrMore
    src = rule("s followed by m* greedy followed by e", W)
    assert matches(src, evs("c1", "a1", "a2", "a3", "d1")) == [["c1", "a1", "a2", "a3", "d1"]]


def test_greedy_zero_or_more_in_between():
    # GreedyITCase.testGreedyZeroOrMoreInBetween
    src = rule("s followed by m* greedy followed by e", W)
    events = evs("c1", "x1", "a1", "x2", "a2", "x3", "a3", "d1")
    assert matches(src, events) == [["c1", "a1", "a2", "a3", "d1"]]


def test_greedy_zero_or_more_with_dummy_after():
    # GreedyITCase.testGreedyZeroOrMoreWithDummyEventsAfterQuantifier
    src = rule("s followed by m* greedy followed by e", W)
    assert matches(src, evs("c1", "a1", "a2", "x1", "d1")) == [["c1", "a1", "a2", "d1"]]


def test_greedy_zero_or_more_with_dummy_before():
    # GreedyITCase.testGreedyZeroOrMoreWithDummyEventsBeforeQuantifier
    src = rule("s followed by m* greedy followed by e", W)
    assert matches(src, evs("c1", "x1", "d1")) == [["c1", "d1"]]


def test_non_greedy_for_comparison():
    src = rule("s followed by m* followed by e", W)
    found = matches(src, evs("c1", "a1", "a2", "d1"))
    assert bag(found) == bag([["c1", "a1", "a2", "d1"], ["c1", "a1", "d1"], ["c1", "d1"]])


def test_greedy_one_or_more():
    # GreedyITCase.testGreedyOneOrMore
    src = rule("s followed by m+ greedy followed by e", W)
    assert matches(src, evs("c1", "a1", "a2", "a3", "d1")) == [["c1", "a1", "a2", "a3", "d1"]]


def test_greedy_one_or_more_in_between():
    # GreedyITCase.testGreedyOneOrMoreInBetween
    src = rule("s followed by m+ greedy followed by e", W)
    events = evs("c1", "x1", "a1", "x2", "a2", "x3", "a3", "d1")
    assert matches(src, events) == [["c1", "a1", "a2", "a3", "d1"]]


def test_greedy_one_or_more_with_dummies():
    # GreedyITCase.testGreedyOneOrMoreWithDummyEventsAfterQuantifier / ...BeforeQuantifier
    src = rule("s followed by m+ greedy followed by e", W)
    assert matches(src, evs("c1", "a1", "a2", "x1", "d1")) == [["c1", "a1", "a2", "d1"]]
    assert matches(src, evs("c1", "x1", "d1")) == []


def _priced(*spec: tuple[str, float]) -> list:
    return [ev(n, price=p) for n, p in spec]


def test_greedy_until_zero_or_more():
    # GreedyITCase.testGreedyUntilZeroOrMoreWithDummyEventsAfterQuantifier
    src = rule("s followed by m* greedy until (price > 3.0) followed by e", W)
    events = _priced(("c1", 1), ("a1", 2), ("a2", 3), ("a3", 3), ("a4", 4), ("d1", 3))
    assert matches(src, events) == [["c1", "a1", "a2", "a3", "d1"]]


def test_greedy_until_zero_or_more_until_first():
    # GreedyITCase.testGreedyUntilWithDummyEventsBeforeQuantifier
    src = rule("s followed by m* greedy until (price > 3.0) followed by e", W)
    events = _priced(("c1", 1), ("a4", 4), ("a1", 2), ("a2", 3), ("a3", 3), ("d1", 3))
    assert matches(src, events) == [["c1", "d1"]]


def test_greedy_until_one_or_more():
    # GreedyITCase.testGreedyUntilOneOrMoreWithDummyEventsAfterQuantifier / ...Before...
    src = rule("s followed by m+ greedy until (price > 3.0) followed by e", W)
    events = _priced(("c1", 1), ("a1", 2), ("a2", 3), ("a3", 3), ("a4", 4), ("d1", 3))
    assert matches(src, events) == [["c1", "a1", "a2", "a3", "d1"]]
    events = _priced(("c1", 1), ("a4", 4), ("a1", 2), ("a2", 3), ("a3", 3), ("d1", 3))
    assert matches(src, events) == []


def test_end_with_zero_or_more_greedy():
    # GreedyITCase.testEndWithZeroOrMoreGreedy
    src = rule("s followed by m* greedy", W)
    found = matches(src, evs("c1", "a1", "a2", "x1", "a3"))
    assert bag(found) == bag([["c1"], ["c1", "a1"], ["c1", "a1", "a2"], ["c1", "a1", "a2", "a3"]])


def test_end_with_zero_or_more_consecutive_greedy():
    # GreedyITCase.testEndWithZeroOrMoreConsecutiveGreedy
    src = rule("s followed by m* consecutive greedy", W)
    found = matches(src, evs("c1", "a1", "a2", "x1", "a3"))
    assert bag(found) == bag([["c1"], ["c1", "a1"], ["c1", "a1", "a2"]])


def test_end_with_greedy_times_range():
    # GreedyITCase.testEndWithGreedyTimesRange
    src = rule("s followed by m{2,5} greedy", W)
    found = matches(src, evs("c1", "a1", "a2", "a3", "a4", "x1"))
    assert bag(found) == bag(
        [["c1", "a1", "a2"], ["c1", "a1", "a2", "a3"], ["c1", "a1", "a2", "a3", "a4"]]
    )


def test_greedy_times_range():
    # GreedyITCase.testGreedyTimesRange
    src = rule("s followed by m{2,5} greedy followed by e", W)
    found = matches(src, evs("c1", "a1", "a2", "a3", "a4", "d1"))
    assert found == [["c1", "a1", "a2", "a3", "a4", "d1"]]


def test_greedy_on_a_single_optional_stage_is_rejected():
    # FlinkCEP ignores greedy on a non-looping stage; we reject it rather than ignore it.
    src = rule("s followed by m? greedy followed by e", {**W, "e": kind("a", "d")})
    with pytest.raises(RuleCheckError) as caught:
        matches(src, evs("c1", "a1", "d1"))
    assert [d.code for d in caught.value.diagnostics] == ["E288"]
