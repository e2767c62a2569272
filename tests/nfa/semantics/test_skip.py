"""After-match skip strategies. Ported from FlinkCEP's AfterMatchSkipITCase.

FlinkCEP feeds these without timestamps (all equal): ties are processed in arrival order,
which our default of one millisecond per event reproduces.
"""

from harness import bag, ev, evs, kind, matches, rule

A = {"a": kind("a")}
AB = {"a": kind("a"), "b": kind("b")}
SIX = evs("a1", "a2", "a3", "a4", "a5", "a6")


def test_no_skip():
    # AfterMatchSkipITCase.testNoSkip
    found = matches(rule("a{3}", A, skip="none"), SIX)
    assert found == [["a1", "a2", "a3"], ["a2", "a3", "a4"], ["a3", "a4", "a5"], ["a4", "a5", "a6"]]


def test_no_skip_with_followed_by_any():
    # AfterMatchSkipITCase.testNoSkipWithFollowedByAny
    found = matches(rule("a followed by any b", AB, skip="none"), evs("a1", "b1", "a2", "b2"))
    assert bag(found) == [["a1", "b1"], ["a1", "b2"], ["a2", "b2"]]


def test_skip_to_next_with_followed_by_any():
    # AfterMatchSkipITCase.testSkipToNextWithFollowedByAny
    found = matches(rule("a followed by any b", AB, skip="to next"), evs("a1", "b1", "a2", "b2"))
    assert found == [["a1", "b1"], ["a2", "b2"]]


def test_no_skip_with_quantifier_at_the_end():
    # AfterMatchSkipITCase.testNoSkipWithQuantifierAtTheEnd
    found = matches(rule("a next b+", AB, skip="none"), evs("a1", "b1", "b2", "b3"))
    assert found == [["a1", "b1"], ["a1", "b1", "b2"], ["a1", "b1", "b2", "b3"]]


def test_skip_to_next_with_quantifier_at_the_end():
    # AfterMatchSkipITCase.testSkipToNextWithQuantifierAtTheEnd
    found = matches(rule("a next b+", AB, skip="to next"), evs("a1", "b1", "b2", "b3"))
    assert found == [["a1", "b1"]]


def test_skip_past_last():
    # AfterMatchSkipITCase.testSkipPastLast
    found = matches(rule("a{3}", A, skip="past last"), SIX)
    assert found == [["a1", "a2", "a3"], ["a4", "a5", "a6"]]


AB2 = {"a": kind("ab"), "b": kind("ab")}


def test_skip_to_first():
    # AfterMatchSkipITCase.testSkipToFirst
    found = matches(
        rule("a{2} next b{2}", AB2, skip="to first b"), evs(*(f"ab{i}" for i in range(1, 7)))
    )
    assert found == [["ab1", "ab2", "ab3", "ab4"], ["ab3", "ab4", "ab5", "ab6"]]


def test_skip_to_last():
    # AfterMatchSkipITCase.testSkipToLast
    found = matches(
        rule("a{2} next b{2}", AB2, skip="to last b"), evs(*(f"ab{i}" for i in range(1, 8)))
    )
    assert found == [["ab1", "ab2", "ab3", "ab4"], ["ab4", "ab5", "ab6", "ab7"]]


def test_skip_past_last_with_followed_by_any():
    # AfterMatchSkipITCase.testSkipPastLast2
    src = rule(
        "a followed by any b followed by any c followed by d",
        {**AB, "c": kind("c"), "d": kind("d")},
        skip="past last",
    )
    found = matches(src, evs("a1", "a2", "b1", "b2", "c1", "c2", "d1", "d2"))
    assert found == [["a1", "b1", "c1", "d1"]]


def test_skip_past_last_strict():
    # AfterMatchSkipITCase.testSkipPastLast3
    found = matches(rule("a next b", AB, skip="past last"), evs("a1", "c1", "a2", "b2"))
    assert found == [["a2", "b2"]]


XBC = {"x": kind("x"), "b": kind("ab"), "c": kind("c")}


def test_skip_to_first_with_optional_match():
    # AfterMatchSkipITCase.testSkipToFirstWithOptionalMatch
    src = rule("x* next b next c", XBC, skip="to first b")
    assert matches(src, evs("ab1", "c1", "ab2", "c2")) == [["ab1", "c1"], ["ab2", "c2"]]


def test_skip_to_first_at_start_position():
    # AfterMatchSkipITCase.testSkipToFirstAtStartPosition
    src = rule("b next c", XBC, skip="to first b")
    assert matches(src, evs("ab1", "c1", "ab2", "c2")) == [["ab1", "c1"], ["ab2", "c2"]]


ONE_OR_MORE = evs("a1", "b1", "a2", "b2", "b3", "a3", "b4")


def test_skip_to_first_with_one_or_more():
    # AfterMatchSkipITCase.testSkipToFirstWithOneOrMore
    found = matches(rule("a next b+ consecutive", AB, skip="to first b"), ONE_OR_MORE)
    assert found == [["a1", "b1"], ["a2", "b2"], ["a3", "b4"]]


def test_skip_to_last_with_one_or_more():
    # AfterMatchSkipITCase.testSkipToLastWithOneOrMore
    found = matches(rule("a next b+ consecutive", AB, skip="to last b"), ONE_OR_MORE)
    assert found == [["a1", "b1"], ["a2", "b2"], ["a3", "b4"]]


def test_skip_to_missing_stage_behaves_as_no_skip():
    # AfterMatchSkipITCase.testSkipToFirstNonExistentPositionWithoutException
    src = rule("a next b* consecutive next c", {**AB, "c": kind("c")}, skip="to first b")
    assert matches(src, evs("a1", "c1")) == [["a1", "c1"]]


AT_BEGINNING = evs("a1", "a2", "a3", "b1")


def test_skip_past_last_with_one_or_more_at_beginning():
    # AfterMatchSkipITCase.testSkipPastLastWithOneOrMoreAtBeginning
    src = rule("a+ consecutive greedy next b", AB, skip="past last")
    assert matches(src, AT_BEGINNING) == [["a1", "a2", "a3", "b1"]]


def test_skip_to_last_with_one_or_more_at_beginning():
    # AfterMatchSkipITCase.testSkipToLastWithOneOrMoreAtBeginning
    src = rule("a+ consecutive greedy next b", AB, skip="to last a")
    assert matches(src, AT_BEGINNING) == [["a1", "a2", "a3", "b1"], ["a3", "b1"]]


def test_skip_to_first_with_one_or_more_at_beginning():
    # AfterMatchSkipITCase.testSkipToFirstWithOneOrMoreAtBeginning (skipping to the match's
    # own first event prunes nothing)
    src = rule("a+ consecutive greedy next b", AB, skip="to first a")
    expected = [["a1", "a2", "a3", "b1"], ["a2", "a3", "b1"], ["a3", "b1"]]
    assert matches(src, AT_BEGINNING) == expected


def test_no_skip_with_one_or_more_at_beginning():
    # AfterMatchSkipITCase.testNoSkipWithOneOrMoreAtBeginning
    src = rule("a+ consecutive greedy next b", AB, skip="none")
    expected = [["a1", "a2", "a3", "b1"], ["a2", "a3", "b1"], ["a3", "b1"]]
    assert matches(src, AT_BEGINNING) == expected


def test_skip_to_first_discarding():
    # AfterMatchSkipITCase.testSkipToFirstDiscarding
    src = rule(
        "ac followed by bc followed by cs+ greedy followed by d",
        {"ac": kind("a", "c"), "bc": kind("b", "c"), "cs": kind("c"), "d": kind("d")},
        skip="to first cs",
    )
    found = matches(src, evs("a1", "b1", "c1", "c2", "c3", "d1"))
    assert found == [["a1", "b1", "c1", "c2", "c3", "d1"], ["c1", "c2", "c3", "d1"]]


def test_skip_before_other_already_completed():
    # AfterMatchSkipITCase.testSkipBeforeOtherAlreadyCompleted: a later-starting match that
    # completed first is held back until the earlier one is emitted
    src = rule(
        "a followed by c followed by b",
        {"a": kind("a"), "c": kind("c"), "b": 'kind == "b" and price == first(a.price)'},
        skip="to first c",
    )
    events = [ev("a1", price=0), ev("c1"), ev("a2", price=1), ev("c2")]
    events += [ev("b1", price=1), ev("b2", price=0)]
    assert matches(src, events) == [["a1", "c1", "b2"], ["a2", "c2", "b1"]]


def test_skip_past_last_only_prunes_same_key():
    src = rule("a{2}", A, skip="past last")
    events = [ev("a1", k="x"), ev("a2", k="y"), ev("a3", k="x"), ev("a4", k="y")]
    assert matches(src, events) == [["a1", "a3"], ["a2", "a4"]]
