"""Iterative conditions: aggregates over earlier stages of the same partial match; the current
event is never included. Modelled on FlinkCEP's IterativeConditionsITCase.
"""

from harness import bag, ev, kind, matches, rule


def _p(*spec: tuple[str, float]) -> list:
    return [ev(n, price=p) for n, p in spec]


def test_count_excludes_the_current_event():
    src = rule(
        "s followed by m+ followed by e",
        {"s": kind("c"), "m": 'kind == "a" and count(m) < 2', "e": kind("b")},
    )
    found = matches(src, _p(("c1", 0), ("a1", 0), ("a2", 0), ("a3", 0), ("b1", 0)))
    assert bag(found) == [["c1", "a1", "a2", "b1"], ["c1", "a1", "b1"]]


def test_sum_of_loop_so_far():
    # IterativeConditionsITCase.testIterativeWithLoopingStartingEager style: the loop takes an
    # event while the sum of the events already taken stays below 5
    src = rule(
        "s followed by m+ consecutive",
        {"s": kind("c"), "m": 'kind == "a" and (count(m) == 0 or sum(m.price) < 5.0)'},
    )
    found = matches(src, _p(("c1", 0), ("a1", 2), ("a2", 2), ("a3", 2), ("a4", 2)))
    # before a3 the sum is 4 (< 5): taken; before a4 it is 6: the consecutive loop ends
    assert found == [["c1", "a1"], ["c1", "a1", "a2"], ["c1", "a1", "a2", "a3"]]


def test_sum_over_empty_stage_is_null():
    # SQL semantics: sum() of no events is null, so a comparison with it is not true
    src = rule("s followed by m+", {"s": kind("c"), "m": 'kind == "a" and sum(m.price) < 5.0'})
    assert matches(src, _p(("c1", 0), ("a1", 1), ("a2", 1))) == []


def test_field_of_earlier_stage_is_its_last_event():
    src = rule(
        "s+ consecutive next e",
        {"s": kind("a"), "e": 'kind == "b" and price > s.price and price > first(s.price)'},
    )
    events = _p(("a1", 1), ("a2", 3), ("b1", 2), ("a3", 1), ("a4", 2), ("b2", 5))
    found = matches(src, events)
    assert bag(found) == bag([["a3", "a4", "b2"], ["a4", "b2"]])


def test_each_partial_match_has_its_own_view():
    src = rule(
        "s followed by any e",
        {"s": kind("a"), "e": 'kind == "b" and price > s.price'},
    )
    events = _p(("a1", 1), ("a2", 5), ("b1", 3), ("b2", 6))
    found = matches(src, events)
    assert bag(found) == [["a1", "b1"], ["a1", "b2"], ["a2", "b2"]]


def test_min_max_avg_count_distinct():
    src = rule(
        "m{3} next e",
        {
            "m": kind("a"),
            "e": (
                'kind == "b" and min(m.price) == 1.0 and max(m.price) == 3.0'
                " and avg(m.price) == 2.0 and count_distinct(m.price) == 3"
            ),
        },
    )
    assert matches(src, _p(("a1", 1), ("a2", 2), ("a3", 3), ("b1", 0))) == [
        ["a1", "a2", "a3", "b1"]
    ]
    assert matches(src, _p(("a1", 2), ("a2", 2), ("a3", 2), ("b1", 0))) == []


def test_loop_condition_sees_only_its_own_partial_match():
    # increasing run: each event must be dearer than the last one taken
    src = rule(
        "m{3} combinations",
        {"m": 'kind == "a" and (count(m) == 0 or price > last(m.price))'},
    )
    found = matches(src, _p(("a1", 1), ("a2", 3), ("a3", 2), ("a4", 4)))
    assert bag(found) == bag([["a1", "a2", "a4"], ["a1", "a3", "a4"]])
