"""Negation: `not next` checks the next event only; `not followed by` forbids a match anywhere
until the next positive stage's first event (and across a preceding loop's body).

Ported from FlinkCEP's NotPatternITCase (NotFollowByData: A_1, B_1..B_6, C_1, D_1).
"""

import pytest
from harness import bag, evs, kind, matches, rule

W = {"a": kind("a"), "nb": kind("b"), "nc": kind("c"), "b": kind("b"), "c": kind("c")}
W = {**W, "d": kind("d")}


def test_not_next():
    # NotPatternITCase.testNotNext
    src = rule("a not next nb followed by any c followed by d", W)
    found = matches(src, evs("a1", "c1", "b1", "c2", "d1"))
    assert bag(found) == [["a1", "c1", "d1"], ["a1", "c2", "d1"]]


def test_not_next_no_matches():
    # NotPatternITCase.testNotNextNoMatches
    src = rule("a not next nb followed by c followed by d", W)
    assert matches(src, evs("a1", "b1", "c1", "c2", "d1")) == []


def test_not_next_at_the_end():
    # NotPatternITCase.testNotNextNoMatchesAtTheEnd
    src = rule("a followed by any c followed by any d not next nb", W)
    assert matches(src, evs("a1", "c1", "c2", "d1", "b1")) == []


def test_not_followed_by():
    # NotPatternITCase.testNotFollowedBy
    src = rule("a not followed by nb followed by any c followed by d", W)
    assert matches(src, evs("a1", "c1", "b1", "c2", "d1")) == [["a1", "c1", "d1"]]


def test_not_followed_by_before_optional():
    # NotPatternITCase.testNotFollowedByBeforeOptional
    src = rule("a not followed by nb followed by any c? followed by d", W)
    assert matches(src, evs("a1", "c1", "b1", "c2", "d1")) == [["a1", "c1", "d1"]]


def test_not_followed_by_before_optional_at_the_end():
    # NotPatternITCase.testNotFollowedByBeforeOptionalAtTheEnd
    src = rule("a not followed by nb followed by any c?", W)
    assert bag(matches(src, evs("a1", "c1", "b1", "c2"))) == [["a1"], ["a1", "c1"]]


def test_times_with_not_followed_by():
    # NotPatternITCase.testTimesWithNotFollowedBy
    src = rule("a followed by any b{2} not followed by nc followed by d", W)
    assert matches(src, evs("a1", "b1", "c1", "b2", "d1")) == []


def test_times_with_not_followed_by_after():
    # NotPatternITCase.testTimesWithNotFollowedByAfter (arrival order)
    src = rule("a followed by any b{2} not followed by nc followed by d", W)
    assert matches(src, evs("a1", "d1", "e1", "b1", "b2", "c1", "d2")) == []


def test_not_followed_by_with_branching_at_start():
    # NotPatternITCase.testNotFollowedByWithBranchingAtStart
    src = rule("a not followed by nb followed by c followed by d", W)
    found = matches(src, evs("a1", "b1", "c1", "a2", "c2", "d1"))
    assert found == [["a2", "c2", "d1"]]


AFTER = ["a1", "b1", "b2", "b3", "c1", "b4", "b5", "b6", "d1"]


def test_not_next_after_one_or_more():
    # NotPatternITCase.testNotNextAfterOneOrMoreSkipTillNext / ...SkipTillAny
    events = evs("a1", "b1", "c1", "b2", "d1")
    assert matches(rule("a followed by b+ not next nc followed by d", W), events) == []
    src = rule("a followed by any b+ not next nc followed by d", W)
    assert matches(src, events) == [["a1", "b2", "d1"]]


def test_not_followed_by_after_one_or_more_relaxed():
    # NotPatternITCase.testNotFollowedByNextAfterOneOrMoreEager / ...Combinations
    assert matches(rule("a followed by b+ not followed by nc followed by d", W), evs(*AFTER)) == []
    src = rule("a followed by b+ combinations not followed by nc followed by d", W)
    assert matches(src, evs(*AFTER)) == []


def test_not_followed_by_after_one_or_more_any():
    # NotPatternITCase.testNotFollowedByAnyAfterOneOrMoreEager
    src = rule("a followed by any b+ not followed by nc followed by d", W)
    found = matches(src, evs(*AFTER))
    tails = [["b4", "b5", "b6"], ["b4", "b5"], ["b4"], ["b5", "b6"], ["b5"], ["b6"]]
    assert bag(found) == bag(["a1", *t, "d1"] for t in tails)


def test_not_followed_by_after_one_or_more_any_combinations():
    # NotPatternITCase.testNotFollowedByAnyAfterOneOrMoreCombinations
    src = rule("a followed by any b+ combinations not followed by nc followed by d", W)
    found = matches(src, evs(*AFTER))
    tails = [["b4", "b5", "b6"], ["b4", "b5"], ["b4", "b6"], ["b4"], ["b5", "b6"], ["b5"], ["b6"]]
    assert bag(found) == bag(["a1", *t, "d1"] for t in tails)


BEFORE = ["a1", "b1", "c1", "b4", "b5", "b6", "d1"]
EAGER = [["b4", "b5", "b6"], ["b4", "b5"], ["b4"], []]
COMBOS = [["b4", "b5", "b6"], ["b4", "b5"], ["b4", "b6"], ["b4"], ["b5", "b6"], ["b5"], ["b6"], []]


@pytest.mark.parametrize(
    ("pattern", "tails"),
    [
        # NotPatternITCase.testNotFollowedByBeforeOneOrMoreEager / ...Combinations
        ("a not followed by nc followed by b+ followed by d", EAGER),
        ("a not followed by nc followed by b+ combinations followed by d", COMBOS),
        # NotPatternITCase.testNotFollowedByAnyBeforeOneOrMoreEager / ...Combinations
        pytest.param("a not followed by nc followed by any b+ followed by d", EAGER),
        pytest.param(
            "a not followed by nc followed by any b+ combinations followed by d",
            COMBOS,
        ),
        # NotPatternITCase.testNotFollowedByBeforeZeroOrMore*
        pytest.param("a not followed by nc followed by b* followed by d", EAGER),
        pytest.param("a not followed by nc followed by b* combinations followed by d", COMBOS),
        pytest.param("a not followed by nc followed by any b* followed by d", EAGER),
        pytest.param(
            "a not followed by nc followed by any b* combinations followed by d",
            COMBOS,
        ),
    ],
)
def test_not_followed_by_before_loop(pattern, tails):
    found = matches(rule(pattern, W), evs(*BEFORE))
    assert bag(found) == bag(["a1", "b1", *t, "d1"] for t in tails)


def test_not_followed_by_before_zero_or_more_forbids_until_first_loop_event():
    src = rule("a not followed by nc followed by b* followed by d", W)
    assert matches(src, evs("a1", "c1", "b1", "d1")) == []


def test_loop_before_not_followed_by_without_forbidden_event():
    src = rule("a followed by b+ not followed by nc followed by d", W)
    found = matches(src, evs("a1", "b1", "b2", "d1"))
    assert bag(found) == [["a1", "b1", "b2", "d1"], ["a1", "b1", "d1"]]


def test_not_followed_by_across_loop_body():
    # SEMANTICS: not followed by after a loop is checked across the loop's body too
    src = rule("a followed by b+ not followed by nc followed by d", W)
    assert matches(src, evs("a1", "b1", "c1", "b2", "d1")) == []
