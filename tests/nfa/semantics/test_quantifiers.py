"""Quantifiers ?, *, +, {n}, {n,}, {n,m} with relaxed, consecutive and combinations loops.

Ported from FlinkCEP's NFAITCase, TimesRangeITCase and TimesOrMoreITCase.
"""

from harness import bag, evs, kind, matches, rule

W = {"s": kind("c"), "m": kind("a"), "e": kind("b")}


def test_optional():
    # NFAITCase.testOptional
    src = rule("s followed by m? followed by e", W)
    assert bag(matches(src, evs("c1", "a1", "b1"))) == [["c1", "a1", "b1"], ["c1", "b1"]]


def test_zero_or_more_relaxed():
    # NFAITCase.testEagerZeroOrMore: a relaxed loop cannot leave an `a` out
    src = rule("s followed by m* followed by e", W)
    found = matches(src, evs("c1", "a1", "a2", "d1", "a3", "b1"))
    assert bag(found) == bag(
        [
            ["c1", "a1", "a2", "a3", "b1"],
            ["c1", "a1", "a2", "b1"],
            ["c1", "a1", "b1"],
            ["c1", "b1"],
        ]
    )


def test_zero_or_more_combinations():
    # NFAITCase.testZeroOrMore
    src = rule("s followed by any m* combinations followed by e", W)
    found = matches(src, evs("c1", "a1", "a2", "b1"))
    assert bag(found) == bag(
        [["c1", "a1", "a2", "b1"], ["c1", "a1", "b1"], ["c1", "a2", "b1"], ["c1", "b1"]]
    )


def test_begin_with_zero_or_more():
    # NFAITCase.testBeginWithZeroOrMore
    src = rule("m* followed by e", W)
    found = matches(src, evs("a1", "a2", "a3", "b1"))
    assert bag(found) == bag(
        [
            ["a1", "a2", "a3", "b1"],
            ["a1", "a2", "b1"],
            ["a2", "a3", "b1"],
            ["a1", "b1"],
            ["a2", "b1"],
            ["a3", "b1"],
            ["b1"],
        ]
    )


def test_one_or_more_combinations():
    # NFAITCase.testAtLeastOne
    src = rule("s followed by any m+ combinations followed by any e", W)
    found = matches(src, evs("c1", "a1", "a2", "b1"))
    assert bag(found) == bag([["c1", "a1", "a2", "b1"], ["c1", "a1", "b1"], ["c1", "a2", "b1"]])


def test_begin_with_one_or_more_combinations():
    # NFAITCase.testBeginWithAtLeastOne
    src = rule("m+ combinations followed by e", W)
    found = matches(src, evs("a1", "a2", "a3", "b1"))
    assert bag(found) == bag(
        [
            ["a1", "a2", "a3", "b1"],
            ["a1", "a2", "b1"],
            ["a1", "a3", "b1"],
            ["a2", "a3", "b1"],
            ["a1", "b1"],
            ["a2", "b1"],
            ["a3", "b1"],
        ]
    )


def test_one_or_more_relaxed_after_any():
    # NFAITCase.testAtLeastOneEager
    src = rule("s followed by any m+ followed by any e", W)
    found = matches(src, evs("c1", "a1", "a2", "a3", "b1"))
    assert bag(found) == bag(
        [
            ["c1", "a1", "a2", "a3", "b1"],
            ["c1", "a1", "a2", "b1"],
            ["c1", "a2", "a3", "b1"],
            ["c1", "a3", "b1"],
            ["c1", "a2", "b1"],
            ["c1", "a1", "b1"],
        ]
    )


def test_end_with_zero_or_more_one_match_per_prefix():
    # NFAITCase.testEndWithZeroOrMore; emitted as soon as the final state is reachable
    src = rule("s followed by m*", W)
    found = matches(src, evs("c1", "a1", "a2", "a3"))
    assert found == [["c1"], ["c1", "a1"], ["c1", "a1", "a2"], ["c1", "a1", "a2", "a3"]]


def test_end_with_one_or_more():
    # NFAITCase.testEndWithOneOrMore
    src = rule("s followed by m+", W)
    found = matches(src, evs("c1", "a1", "a2", "a3"))
    assert bag(found) == bag([["c1", "a1", "a2", "a3"], ["c1", "a1", "a2"], ["c1", "a1"]])


def test_only_zero_or_more():
    # NFAITCase.testStartAndEndWithZeroOrMore: no empty match
    src = rule("m*", W)
    found = matches(src, evs("c1", "a1", "a2", "a3", "d1", "d2", "d3"))
    assert bag(found) == bag(
        [["a1", "a2", "a3"], ["a1", "a2"], ["a1"], ["a2", "a3"], ["a2"], ["a3"]]
    )


def test_times_combinations_after_next():
    # NFAITCase.testTimes
    src = rule("s next m{2} combinations followed by e", W)
    found = matches(src, evs("c1", "a1", "a2", "a3", "b1"))
    assert bag(found) == bag([["c1", "a1", "a2", "b1"], ["c1", "a1", "a3", "b1"]])


def test_start_with_times_consecutive():
    # NFAITCase.testStartWithTimes
    src = rule("m{2} consecutive followed by e", W)
    found = matches(src, evs("a1", "a2", "a3", "b1"))
    assert bag(found) == bag([["a1", "a2", "b1"], ["a2", "a3", "b1"]])


def test_times_non_strict_with_next():
    # NFAITCase.testTimesNonStrictWithNext
    src = rule("s next m{2} combinations followed by e", W)
    found = matches(src, evs("c1", "a1", "f1", "a2", "f2", "a3", "b1"))
    assert bag(found) == bag([["c1", "a1", "a2", "b1"], ["c1", "a1", "a3", "b1"]])


def test_times_relaxed():
    # NFAITCase.testTimesNotStrictWithFollowedByEager
    src = rule("s followed by m{2} followed by e", W)
    assert matches(src, evs("c1", "a1", "a2", "a3", "b1")) == [["c1", "a1", "a2", "b1"]]


def test_times_consecutive_broken():
    # NFAITCase.testTimesStrictWithNextAndConsecutive
    src = rule("s next m{2} consecutive followed by e", W)
    assert matches(src, evs("c1", "a1", "f1", "a2", "a3", "b1")) == []


def test_times_range():
    # TimesRangeITCase.testTimesRange
    src = rule("s next m{1,3} followed by e", W)
    found = matches(src, evs("c1", "a1", "a2", "a3", "b1"))
    assert bag(found) == bag(
        [["c1", "a1", "a2", "a3", "b1"], ["c1", "a1", "a2", "b1"], ["c1", "a1", "b1"]]
    )


def test_times_range_stops_at_max():
    src = rule("s followed by m{1,3} followed by e", W)
    found = matches(src, evs("c1", "a1", "a2", "a3", "a4", "b1"))
    assert bag(found) == bag(
        [["c1", "a1", "a2", "a3", "b1"], ["c1", "a1", "a2", "b1"], ["c1", "a1", "b1"]]
    )


def test_times_range_combinations():
    src = rule("s followed by m{2,3} combinations followed by e", W)
    found = matches(src, evs("c1", "a1", "a2", "a3", "b1"))
    assert bag(found) == bag(
        [["c1", "a1", "a2", "a3", "b1"], ["c1", "a1", "a2", "b1"], ["c1", "a1", "a3", "b1"]]
    )


def test_times_or_more():
    # TimesOrMoreITCase.testTimesOrMore
    src = rule("s followed by m{2,} followed by e", W)
    found = matches(src, evs("c1", "a1", "a2", "a3", "b1"))
    assert bag(found) == bag([["c1", "a1", "a2", "a3", "b1"], ["c1", "a1", "a2", "b1"]])


def test_times_or_more_consecutive():
    src = rule("s followed by m{2,} consecutive followed by e", W)
    assert matches(src, evs("c1", "a1", "x1", "a2", "a3", "b1")) == []
    found = matches(src, evs("c1", "x1", "a1", "a2", "a3", "b1"))
    assert bag(found) == bag([["c1", "a1", "a2", "a3", "b1"], ["c1", "a1", "a2", "b1"]])


def test_times_or_more_combinations():
    src = rule("s followed by m{2,} combinations followed by e", W)
    found = matches(src, evs("c1", "a1", "a2", "a3", "b1"))
    assert bag(found) == bag(
        [["c1", "a1", "a2", "a3", "b1"], ["c1", "a1", "a2", "b1"], ["c1", "a1", "a3", "b1"]]
    )
