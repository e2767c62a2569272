"""Keys are matched independently: no event of one key affects another key's matches."""

from harness import ev, kind, rule, run

AB = {"a": kind("a"), "b": kind("b")}


def test_relaxed_per_key():
    src = rule("a followed by b", AB)
    events = [ev("a1", k="x"), ev("a2", k="y"), ev("b2", k="y"), ev("b1", k="x")]
    result = run(src, events)
    assert result.matches == [["a2", "b2"], ["a1", "b1"]]
    assert result.match_keys == ["y", "x"]


def test_no_match_across_keys():
    src = rule("a followed by b", AB)
    assert run(src, [ev("a1", k="x"), ev("b1", k="y")]).matches == []


def test_strict_contiguity_ignores_other_keys():
    src = rule("a next b", AB)
    events = [ev("a1", k="x"), ev("c1", k="y"), ev("b1", k="x")]
    assert run(src, events).matches == [["a1", "b1"]]


def test_windows_per_key():
    src = rule("a followed by b", AB, within="10ms", timeout=True)
    events = [ev("a1", 1, k="x"), ev("a2", 5, k="y"), ev("b1", 12, k="x"), ev("b2", 14, k="y")]
    result = run(src, events)
    assert result.matches == [["a2", "b2"]]
    assert result.timeouts == [["a1"]]
    assert result.timeout_times == [11]


def test_absence_per_key():
    src = rule("a not followed by nb", {"a": kind("a"), "nb": kind("b")}, within="10ms")
    events = [ev("a1", 1, k="x"), ev("a2", 2, k="y"), ev("b1", 3, k="y")]
    result = run(src, events)
    assert result.matches == [["a1"]]
    assert result.match_keys == ["x"]
    assert result.match_times == [11]


def test_loops_per_key():
    src = rule("a{3}", {"a": kind("a")})
    events = [ev("a1", k="x"), ev("a2", k="y"), ev("a3", k="x"), ev("a4", k="y"), ev("a5", k="x")]
    assert run(src, events).matches == [["a1", "a3", "a5"]]
