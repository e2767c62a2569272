"""Groups with quantifiers (FlinkCEP's GroupPattern) and alternation of sub-sequences."""

from harness import bag, evs, kind, matches, rule

W = {"s": kind("c"), "a": kind("a"), "b": kind("b"), "e": kind("d")}


def test_group_followed_by_one_or_more():
    # GroupITCase.testGroupFollowedByOneOrMore
    src = rule("s followed by (a followed by b)+ followed by e", W)
    found = matches(src, evs("c1", "a1", "b1", "a2", "b2", "d1"))
    assert bag(found) == bag([["c1", "a1", "b1", "d1"], ["c1", "a1", "b1", "a2", "b2", "d1"]])


def test_group_next_is_strict_inside_and_outside():
    src = rule("s next (a next b) next e", W)
    assert matches(src, evs("c1", "a1", "b1", "d1")) == [["c1", "a1", "b1", "d1"]]
    assert matches(src, evs("c1", "a1", "x1", "b1", "d1")) == []


def test_group_times():
    src = rule("s followed by (a followed by b){2} followed by e", W)
    found = matches(src, evs("c1", "a1", "b1", "a2", "b2", "d1"))
    assert found == [["c1", "a1", "b1", "a2", "b2", "d1"]]
    assert matches(src, evs("c1", "a1", "b1", "d1")) == []


def test_optional_group():
    src = rule("s followed by (a followed by b)? followed by e", W)
    found = matches(src, evs("c1", "a1", "b1", "d1"))
    assert bag(found) == bag([["c1", "a1", "b1", "d1"], ["c1", "d1"]])


def test_alternation_takes_either_branch():
    src = rule("s next (a | b) next e", W)
    assert matches(src, evs("c1", "a1", "d1", "c2", "b1", "d2", "c3", "d3")) == [
        ["c1", "a1", "d1"],
        ["c2", "b1", "d2"],
    ]


def test_alternation_of_sequences():
    src = rule("s followed by (a next b | e)", W)
    assert bag(matches(src, evs("c1", "a1", "b1", "d1"))) == bag([["c1", "a1", "b1"], ["c1", "d1"]])


def test_looping_alternation():
    src = rule("s next (a | b)+ consecutive next e", W)
    assert matches(src, evs("c1", "a1", "b1", "a2", "d1")) == [["c1", "a1", "b1", "a2", "d1"]]
