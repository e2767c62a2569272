"""Contiguity: strict (`next`), relaxed (`followed by`) and skip-till-any (`followed by any`).

Ported from FlinkCEP's NFAITCase; events are named like its `Event(id, "a", price)`.
"""

from harness import bag, ev, evs, kind, matches, rule

AB = {"a": kind("a"), "b": kind("b")}


def test_strict_with_results():
    # NFAITCase.testStrictContinuityWithResults
    assert matches(rule("a next b", AB), evs("a1", "b1")) == [["a1", "b1"]]


def test_strict_no_results():
    # NFAITCase.testStrictContinuityNoResults
    assert matches(rule("a next b", AB), evs("a1", "c1", "b1")) == []


def test_strict_restarts_from_latest_start():
    assert matches(rule("a next b", AB), evs("a1", "a2", "b1")) == [["a2", "b1"]]


def test_relaxed_without_conditions():
    # NFAITCase.testNoConditionNFA: begin("start").followedBy("end")
    src = rule("s followed by e")
    found = matches(src, evs("a1", "b1", "c1", "d1", "e1"))
    assert found == [["a1", "b1"], ["b1", "c1"], ["c1", "d1"], ["d1", "e1"]]


def test_any_without_conditions():
    # NFAITCase.testAnyWithNoConditionNFA: begin("start").followedByAny("end")
    names = ["a1", "b1", "c1", "d1", "e1"]
    found = matches(rule("s followed by any e"), evs(*names))
    expected = [[x, y] for i, x in enumerate(names) for y in names[i + 1 :]]
    assert bag(found) == bag(expected)


def test_relaxed_skips_irrelevant_events():
    # NFAITCase.testSimplePatternNFA (the SubEvent volume is our price)
    src = rule(
        "s followed by m followed by e",
        {"s": kind("start"), "m": "price > 5.0", "e": kind("end")},
    )
    events = [
        ev("start1"),
        ev("foobar1"),
        ev("barfoo1", price=5.0),
        ev("foo1", price=10.0),
        ev("start2"),
        ev("end1"),
    ]
    assert matches(src, events) == [["start1", "foo1", "end1"]]


def test_relaxed_takes_the_first_satisfying_event_only():
    assert matches(rule("a followed by b", AB), evs("a1", "b1", "b2")) == [["a1", "b1"]]


def test_any_branches_on_every_satisfying_event():
    found = matches(rule("a followed by any b", AB), evs("a1", "b1", "b2"))
    assert bag(found) == [["a1", "b1"], ["a1", "b2"]]


def test_branching_with_followed_by_any():
    # NFAITCase.testBranchingPattern
    src = rule(
        "s followed by any m1 followed by any m2 followed by any e",
        {"s": kind("start"), "m1": "price > 5.0", "m2": kind("next"), "e": kind("end")},
    )
    events = [
        ev("start1"),
        ev("foo1", price=10.0),
        ev("foo2", price=10.0),
        ev("foo3", price=10.0),
        ev("next1", price=2.0),
        ev("next2", price=2.0),
        ev("end1"),
    ]
    expected = [
        ["start1", m, n, "end1"] for m in ("foo1", "foo2", "foo3") for n in ("next1", "next2")
    ]
    assert bag(matches(src, events)) == bag(expected)


def test_any_then_relaxed():
    src = rule("a followed by any b followed by c", {**AB, "c": kind("c")})
    found = matches(src, evs("a1", "b1", "b2", "c1", "c2"))
    assert bag(found) == [["a1", "b1", "c1"], ["a1", "b2", "c1"]]


W = {"s": kind("d"), "m": kind("a"), "e": kind("b")}


def test_strict_after_zero_or_more_no_results():
    # NFAITCase.testStrictContinuityNoResultsAfterZeroOrMore
    src = rule("s followed by m* next e", W)
    assert matches(src, evs("d1", "a1", "a2", "c1", "b1")) == []


def test_strict_after_zero_or_more_combinations():
    # NFAITCase.testStrictContinuityResultsAfterZeroOrMore
    src = rule("s followed by any m* combinations next e", W)
    found = matches(src, evs("d1", "a1", "a2", "b1"))
    assert bag(found) == [["d1", "a1", "a2", "b1"], ["d1", "a2", "b1"]]


def test_next_zero_or_more_consecutive():
    # NFAITCase.testNextZeroOrMore: the stray event breaks `next middle`; middle is skipped
    src = rule(
        "s next m* consecutive followed by e",
        {"s": kind("start"), "m": kind("middle"), "e": kind("end")},
    )
    events = evs("start1", "event1", "middle1", "middle2", "middle3", "end1")
    assert matches(src, events) == [["start1", "end1"]]


def test_start_with_optional():
    # NFAITCase.testStartWithOptional
    src = rule("s? followed by e", {"s": kind("c"), "e": kind("b")})
    assert bag(matches(src, evs("c1", "b1"))) == [["b1"], ["c1", "b1"]]


ABC = {"a": kind("a"), "b": kind("b"), "c": kind("c")}


def test_strict_after_skipped_optional_is_measured_from_earlier_stage():
    # SEMANTICS: contiguity is measured from the last event taken (a1, as b was skipped)
    src = rule("a followed by b? next c", ABC)
    assert matches(src, evs("a1", "c1")) == [["a1", "c1"]]
    assert matches(src, evs("a1", "x1", "c1")) == []
    assert matches(src, evs("a1", "x1", "b1", "c1")) == [["a1", "b1", "c1"]]


def test_relaxed_after_skipped_strict_optional():
    src = rule("a next b? followed by c", ABC)
    assert matches(src, evs("a1", "x1", "c1")) == [["a1", "c1"]]
    # b1 may also be left to the skipped optional stage's relaxed successor (as in FlinkCEP)
    found = matches(src, evs("a1", "b1", "x1", "c1"))
    assert bag(found) == [["a1", "b1", "c1"], ["a1", "c1"]]


def test_strict_chain_with_optional_middle():
    src = rule("a next b? next c", ABC)
    assert matches(src, evs("a1", "c1")) == [["a1", "c1"]]
    assert matches(src, evs("a1", "b1", "c1")) == [["a1", "b1", "c1"]]
    assert matches(src, evs("a1", "x1", "c1")) == []
    assert matches(src, evs("a1", "b1", "x1", "c1")) == []
