"""`until`: ends a loop without the loop taking the event; the next stage may take it.

Ported from FlinkCEP's UntilConditionITCase (UNTIL_CONDITION is `price == 5.0`).
"""

from harness import bag, ev, kind, matches, rule

W = {"s": kind("c"), "m": kind("a"), "e": "price == 5.0"}
UNTIL = "until (price == 5.0)"


def _events(*spec: tuple[str, float]) -> list:
    return [ev(n, price=p) for n, p in spec]


BASE = _events(("c1", 1), ("a1", 2), ("a2", 3), ("a5", 5), ("a6", 6))
FOUR = _events(("c1", 1), ("a1", 2), ("a2", 3), ("a3", 4), ("a5", 5), ("a6", 6))


def test_followed_by_one_or_more():
    # UntilConditionITCase.testUntilConditionFollowedByOneOrMore
    found = matches(rule(f"s followed by m+ {UNTIL} followed by e", W), BASE)
    assert bag(found) == bag([["c1", "a1", "a2", "a5"], ["c1", "a1", "a5"]])


def test_followed_by_one_or_more_combinations():
    # UntilConditionITCase.testUntilConditionFollowedByOneOrMoreCombinations
    found = matches(rule(f"s followed by m+ combinations {UNTIL} followed by e", W), FOUR)
    assert bag(found) == bag(
        [
            ["c1", "a1", "a2", "a3", "a5"],
            ["c1", "a1", "a2", "a5"],
            ["c1", "a1", "a3", "a5"],
            ["c1", "a1", "a5"],
        ]
    )


def test_followed_by_one_or_more_consecutive():
    # UntilConditionITCase.testUntilConditionFollowedByOneOrMoreConsecutive
    found = matches(rule(f"s followed by m+ consecutive {UNTIL} followed by e", W), BASE)
    assert bag(found) == bag([["c1", "a1", "a2", "a5"], ["c1", "a1", "a5"]])


def test_followed_by_zero_or_more():
    # UntilConditionITCase.testUntilConditionFollowedByZeroOrMore
    found = matches(rule(f"s followed by m* {UNTIL} followed by e", W), BASE)
    assert bag(found) == bag([["c1", "a1", "a2", "a5"], ["c1", "a1", "a5"], ["c1", "a5"]])


def test_followed_by_zero_or_more_combinations():
    # UntilConditionITCase.testUntilConditionFollowedByZeroOrMoreCombinations
    found = matches(rule(f"s followed by m* combinations {UNTIL} followed by e", W), FOUR)
    assert bag(found) == bag(
        [
            ["c1", "a1", "a2", "a3", "a5"],
            ["c1", "a1", "a2", "a5"],
            ["c1", "a1", "a3", "a5"],
            ["c1", "a1", "a5"],
            ["c1", "a5"],
        ]
    )


def test_followed_by_zero_or_more_consecutive():
    # UntilConditionITCase.testUntilConditionFollowedByZeroOrMoreConsecutive
    found = matches(rule(f"s followed by m* consecutive {UNTIL} followed by e", W), BASE)
    assert bag(found) == bag([["c1", "a1", "a2", "a5"], ["c1", "a1", "a5"], ["c1", "a5"]])


ANY = _events(("c1", 1), ("a1", 2), ("a2", 3), ("a5", 5), ("a6", 6))


def test_followed_by_any_one_or_more_at_end():
    # UntilConditionITCase.testUntilConditionFollowedByAnyOneOrMore
    found = matches(rule(f"s followed by any m+ {UNTIL}", W), ANY)
    assert bag(found) == bag([["c1", "a1", "a2"], ["c1", "a1"], ["c1", "a2"], ["c1", "a6"]])


def test_followed_by_any_zero_or_more_at_end():
    # UntilConditionITCase.testUntilConditionFollowedByAnyZeroOrMore
    found = matches(rule(f"s followed by any m* {UNTIL}", W), ANY)
    assert bag(found) == bag([["c1", "a1", "a2"], ["c1", "a1"], ["c1", "a2"], ["c1", "a6"], ["c1"]])


EMPTY = _events(("c1", 1), ("a1", 2), ("a2", 3), ("d1", 1), ("a5", 5), ("a6", 6))


def test_until_with_empty_where():
    # UntilConditionITCase.testUntilConditionWithEmptyWhere
    found = matches(rule(f"s followed by m+ {UNTIL}", {"s": kind("c")}), EMPTY)
    assert bag(found) == bag([["c1", "a1", "a2", "d1"], ["c1", "a1", "a2"], ["c1", "a1"]])


def test_iterative_until_one_or_more():
    # UntilConditionITCase.testIterativeUntilConditionOneOrMore: until sees the loop so far
    src = rule("s followed by m+ until (sum(m.price) == 6.0)", {"s": kind("c")})
    found = matches(src, EMPTY)
    assert bag(found) == bag([["c1", "a1", "a2", "d1"], ["c1", "a1", "a2"], ["c1", "a1"]])


def test_iterative_until_zero_or_more():
    # UntilConditionITCase.testIterativeUntilConditionZeroOrMore
    src = rule("s followed by m* until (sum(m.price) == 6.0)", {"s": kind("c")})
    found = matches(src, EMPTY)
    assert bag(found) == bag([["c1", "a1", "a2", "d1"], ["c1", "a1", "a2"], ["c1", "a1"], ["c1"]])


def test_until_event_is_not_taken_by_the_loop():
    src = rule(f"s followed by m+ {UNTIL} followed by e", W)
    found = matches(src, _events(("c1", 1), ("a5", 5), ("a1", 2), ("a6", 6)))
    assert found == []


P = _events


def test_no_event_is_accepted_into_the_loop_after_until():
    src = rule(f"s followed by m+ {UNTIL}", W)
    assert matches(src, P(("c1", 1), ("a1", 1), ("a5", 5), ("a2", 2))) == [["c1", "a1"]]
    src = rule(f"s followed by m+ {UNTIL} followed by e", {**W, "e": kind("d")})
    found = matches(src, P(("c1", 1), ("a1", 1), ("a5", 5), ("a2", 2), ("d1", 1)))
    assert found == [["c1", "a1", "d1"]]


def test_until_before_the_first_loop_event():
    # the head's ignore is `not cond` (FlinkCEP getIgnoreCondition): an until event that
    # satisfies the condition can neither be taken nor skipped, so `m+` fails ...
    src = rule(f"s followed by m+ {UNTIL}", W)
    assert matches(src, P(("c1", 1), ("a5", 5), ("a1", 1))) == []
    # ... and `m*` can only proceed past the (empty) loop
    src = rule(f"s followed by m* {UNTIL} followed by e", {**W, "e": kind("d")})
    assert matches(src, P(("c1", 1), ("a5", 5), ("a1", 1), ("d1", 1))) == [["c1", "d1"]]


def test_until_ends_a_consecutive_loop():
    src = rule(f"s followed by m+ consecutive {UNTIL}", W)
    found = matches(src, P(("c1", 1), ("a1", 1), ("a2", 2), ("a5", 5), ("a3", 3)))
    assert bag(found) == [["c1", "a1"], ["c1", "a1", "a2"]]
