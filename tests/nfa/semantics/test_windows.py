"""`within T`: last - first < T; timed-out partial matches reported at start + T.

Ported from FlinkCEP's NFAITCase and NotPatternITCase.
"""

from harness import bag, ev, kind, rule, run

W = {"s": kind("start"), "m": kind("middle"), "e": kind("end")}
EVENTS = [
    ev("start1", 1),
    ev("start2", 2),
    ev("middle1", 3),
    ev("foobar1", 4),
    ev("end1", 11),
    ev("end2", 13),
]


def test_pattern_with_time_window():
    # NFAITCase.testSimplePatternWithTimeWindowNFA
    src = rule("s followed by m followed by e", W, within="10ms")
    assert run(src, EVENTS).matches == [["start2", "middle1", "end1"]]


def test_timeout_handling():
    # NFAITCase.testSimplePatternWithTimeoutHandling (timeout time = start + window, as
    # FlinkCEP reports it since 1.5)
    src = rule("s followed by any m followed by any e", W, within="10ms", timeout=True)
    result = run(src, EVENTS)
    assert result.matches == [["start2", "middle1", "end1"]]
    timeouts = sorted(zip(result.timeouts, result.timeout_times, strict=True))
    assert timeouts == [
        (["start1"], 11),
        (["start1", "middle1"], 11),
        (["start2"], 12),
        (["start2", "middle1"], 12),
    ]


def test_window_is_exclusive():
    src = rule("s followed by e", W, within="10ms")
    assert run(src, [ev("start1", 1), ev("end1", 10)]).matches == [["start1", "end1"]]
    assert run(src, [ev("start1", 1), ev("end1", 11)]).matches == []


def test_no_timeouts_without_on_timeout():
    src = rule("s followed by e", W, within="10ms")
    assert run(src, [ev("start1", 1), ev("x1", 50)]).timeouts == []


def test_timeout_at_end_of_input():
    src = rule("s followed by m followed by e", W, within="1s", timeout=True)
    result = run(src, [ev("start1", 1000), ev("middle1", 1500)])
    assert result.matches == []
    assert result.timeouts == [["start1", "middle1"]]
    assert result.timeout_times == [2000]


def test_timeout_decided_by_an_unrelated_event():
    src = rule("s followed by e", W, within="1s", timeout=True)
    result = run(src, [ev("start1", 1000), ev("x1", 2500)], finish=False)
    assert result.timeouts == [["start1"]]
    assert result.timeout_times == [2000]


def test_loop_is_bounded_by_the_window():
    src = rule("s followed by m+", W, within="10ms")
    events = [ev("start1", 1), ev("middle1", 5), ev("middle2", 10), ev("middle3", 11)]
    found = run(src, events).matches
    assert bag(found) == [["start1", "middle1"], ["start1", "middle1", "middle2"]]


def test_not_followed_by_before_times_within():
    # NotPatternITCase.testNotFollowByBeforeTimesWithin
    src = rule(
        "a not followed by nb followed by c{0,2}",
        {"a": kind("a"), "nb": kind("b"), "c": kind("c")},
        within="3ms",
    )
    events = [ev("a1", 1), ev("b1", 2), ev("a2", 10), ev("c1", 11), ev("c2", 12)]
    events += [ev("a3", 20), ev("c3", 21), ev("c4", 24)]
    found = run(src, events).matches
    assert bag(found) == bag(
        [["a1"], ["a2"], ["a2", "c1"], ["a2", "c1", "c2"], ["a3"], ["a3", "c3"]]
    )
