"""Event time: buffering within out_of_order, lateness at or below the watermark, ties in
arrival order, and the final watermark of bounded input."""

from harness import ev, kind, rule, run

AB = {"a": kind("a"), "b": kind("b")}


def test_out_of_order_events_are_reordered():
    src = rule("a next b", AB, out_of_order="5s")
    result = run(src, [ev("b1", 2000), ev("a1", 1000)])
    assert result.matches == [["a1", "b1"]]
    assert result.late == []


def test_reordering_across_batches():
    src = rule("a next b", AB, out_of_order="5s")
    assert run(src, [ev("b1", 2000)], [ev("a1", 1000)]).matches == [["a1", "b1"]]


def test_events_wait_for_the_watermark():
    src = rule("a next b", AB, out_of_order="5s")
    assert run(src, [ev("a1", 1000), ev("b1", 2000)], finish=False).matches == []
    # watermark 7000 - 5000 = 2000 releases both
    result = run(src, [ev("a1", 1000), ev("b1", 2000), ev("x1", 7000)], finish=False)
    assert result.matches == [["a1", "b1"]]


def test_late_event_is_reported_and_never_matched():
    src = rule("a followed by b", AB, out_of_order="1s")
    # watermark after a1 is 9000: b1 at 8000 is late
    result = run(src, [ev("a0", 7000), ev("a1", 10000), ev("b1", 8000)])
    assert result.late == ["b1"]
    assert result.matches == []
    assert result.output.late[0].watermark == 9000


def test_event_at_the_watermark_is_late():
    src = rule("a followed by b", AB, out_of_order="1s")
    assert run(src, [ev("a1", 10000), ev("b1", 9000)]).late == ["b1"]
    result = run(src, [ev("a1", 10000), ev("b1", 9001)])
    assert result.late == []
    assert result.matches == []  # b1 precedes a1 in event time


def test_late_event_in_a_later_batch():
    src = rule("a followed by b", AB, out_of_order="0s")
    result = run(src, [ev("a1", 1000), ev("x1", 5000)], [ev("b1", 3000)])
    assert result.late == ["b1"]
    assert result.matches == []


def test_ties_in_arrival_order():
    src = rule("a next b", AB, out_of_order="1s")
    assert run(src, [ev("a1", 1000), ev("b1", 1000)]).matches == [["a1", "b1"]]
    assert run(src, [ev("b1", 1000), ev("a1", 1000)]).matches == []


def test_tie_with_the_maximum_is_late_without_out_of_orderness():
    # SEMANTICS: watermark = max time - out_of_order, late = at or below it. With 0s a second
    # event at the maximum time is late (FlinkCEP's BoundedOutOfOrderness generator emits
    # max - out_of_order - 1ms, so there it would still be on time).
    result = run(rule("a next b", AB), [ev("a1", 1000), ev("b1", 1000)])
    assert result.late == ["b1"]
    assert result.matches == []


def test_ties_in_arrival_order_after_reordering():
    src = rule("a next b next c", {**AB, "c": kind("c")}, out_of_order="5s")
    events = [ev("c1", 2000), ev("a1", 1000), ev("b1", 1000)]
    assert run(src, events).matches == [["a1", "b1", "c1"]]
    events = [ev("c1", 2000), ev("b1", 1000), ev("a1", 1000)]
    assert run(src, events).matches == []


def test_match_time_is_its_last_event():
    src = rule("a followed by b", AB, out_of_order="5s")
    result = run(src, [ev("b1", 4000), ev("a1", 1000), ev("b2", 5000)])
    assert result.matches == [["a1", "b1"]]
    assert result.match_times == [4000]
