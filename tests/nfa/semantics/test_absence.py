"""Absence at the end: "A not followed by B within T" completes by timer at A.time + T.

Ported from FlinkCEP's NotPatternITCase.testNotFollowedByWithinAtEnd and friends.
"""

from harness import ev, kind, rule, run

W = {"a": kind("a"), "nb": kind("b"), "b": kind("b"), "c": kind("c")}


def test_not_followed_by_within_at_end():
    # NotPatternITCase.testNotFollowedByWithinFirstAndLastAtEnd
    src = rule("a not followed by nb", W, within="3ms")
    events = [ev("a1", 1), ev("b1", 2), ev("a2", 4), ev("c1", 5), ev("b2", 10)]
    events += [ev("a3", 11), ev("b3", 13)]
    result = run(src, events)
    assert result.matches == [["a2"]]
    assert result.match_times == [7]


def test_absence_emitted_without_any_further_event():
    src = rule("a not followed by nb", W, within="10s")
    result = run(src, [ev("a1", 1000)])
    assert result.matches == [["a1"]]
    assert result.match_times == [11000]


def test_absence_emitted_when_a_later_event_passes_the_window():
    src = rule("a not followed by nb", W, within="10s")
    result = run(src, [ev("a1", 1000), ev("c1", 30000)], finish=False)
    assert result.matches == [["a1"]]
    assert result.match_times == [11000]


def test_absence_waits_for_the_watermark():
    src = rule("a not followed by nb", W, within="10s", out_of_order="2s")
    # watermark 12000 - 2000 = 10000 < 11000: not yet decided
    assert run(src, [ev("a1", 1000), ev("c1", 12000)], finish=False).matches == []
    # watermark 13500 - 2000 = 11500 >= 11000: the absence completes at 11000
    result = run(src, [ev("a1", 1000), ev("c1", 12000)], [ev("c2", 13500)], finish=False)
    assert result.matches == [["a1"]]
    assert result.match_times == [11000]


def test_no_match_if_b_arrives_in_the_window():
    src = rule("a not followed by nb", W, within="10s")
    assert run(src, [ev("a1", 1000), ev("b1", 5000)]).matches == []
    assert run(src, [ev("a1", 1000), ev("b1", 10999)]).matches == []


def test_b_at_the_window_end_is_too_late_to_cancel():
    # the window is [A.time, A.time + T): at A.time + T the absence is already decided
    src = rule("a not followed by nb", W, within="10s")
    result = run(src, [ev("a1", 1000), ev("b1", 11000)])
    assert result.matches == [["a1"]]
    assert result.match_times == [11000]


def test_absence_after_a_sequence_times_from_the_first_event():
    src = rule("a followed by c not followed by nb", W, within="10s")
    result = run(src, [ev("a1", 1000), ev("c1", 4000)])
    assert result.matches == [["a1", "c1"]]
    assert result.match_times == [11000]
    assert run(src, [ev("a1", 1000), ev("c1", 4000), ev("b1", 9000)]).matches == []
    # a b before the c does not count: only after the last positive stage
    result = run(src, [ev("a1", 1000), ev("b1", 2000), ev("c1", 4000)])
    assert result.matches == [["a1", "c1"]]


def test_every_a_starts_its_own_absence():
    src = rule("a not followed by nb", W, within="10s")
    result = run(src, [ev("a1", 1000), ev("a2", 3000), ev("b1", 12000)])
    assert result.matches == [["a1"]]
    result = run(src, [ev("a1", 1000), ev("a2", 3000)])
    assert result.matches == [["a1"], ["a2"]]
    assert result.match_times == [11000, 13000]


def test_absence_after_match_with_skip_past_last():
    # NotPatternITCase.testNotFollowedByWithinAtEndAfterMatch
    src = rule(
        "a+ combinations followed by c not followed by nb",
        W,
        within="5ms",
        skip="past last",
    )
    events = [ev("a1", 1), ev("a2", 2), ev("a3", 3), ev("c1", 4), ev("c2", 10)]
    assert run(src, events).matches == [["a1", "a2", "a3", "c1"]]
