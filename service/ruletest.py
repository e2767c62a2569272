"""Rule tests: run each rule's example events through the reference engine, compare alerts.

Rule files carry their own tests (a DSL file in a sidecar `<name>.tests.yaml`, a YAML rule
file in its `tests:` section), so a rule change that breaks its intent fails `cep test`
before it reaches the service. A test is a mapping:

    name: three tiny then one large fires
    rule: card_testing                  # the rule under test; other rules' alerts are ignored
    events:                             # in arrival order; `stream` plus the event's fields
      - {stream: txns, card_id: c1, amount: 1.00, ts: "2026-01-01T10:00:00Z"}   # or epoch ms
    watermarks:                         # optional: advance a stream's watermark after an event
      - {after: 0, stream: txns, ts: "2026-01-01T10:30:00Z"}
    expect:                             # the alerts, in any order; [] means none
      - {rule: card_testing, key: c1, fields: {tests: 3}, timed_out: false, events: [0, 1, 2, 3]}

An expected alert matches an actual one when the rule and key are equal, every expected
field equals the actual field (floats to 1e-6 relative), `timed_out` (default false) is
equal and, if given, `events` (indexes into the test's `events`) are the match's events.
The test passes when every expected alert matches a distinct actual alert and there are no
others. The reference engine is used on purpose: it is the oracle of the semantics, so a
test checks the rule, not an engine optimisation.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cep.errors import CepError
from cep.loader import load_paths
from nfa.batch import StringPool, batch_from_records
from nfa.expr import Type
from nfa.mixed import MixedEngine
from nfa.program import Program, Schema
from nfa.reference import ReferenceEngine
from nfa.results import EngineOutput
from nfa.rowpattern_rule import SqlProgram
from service.decode import parse_timestamp
from service.rule_alerts import RuleProgram, rule_alert

EXIT_OK, EXIT_FAILED = 0, 1


@dataclass
class TestResult:
    """The outcome of one rule test; `problems` explain a failure, empty when it passed."""

    __test__ = False  # not a pytest test class

    file: str
    name: str
    rule: str
    passed: bool
    problems: list[str] = field(default_factory=list)
    expected: list[dict[str, Any]] = field(default_factory=list)
    actual: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


class TestSpecError(ValueError):
    """A test that cannot be run as written (unknown rule or stream, bad timestamp...)."""


def run_rule_tests(paths: Iterable[str | Path]) -> list[TestResult]:
    """Load and compile the rules under `paths` and run every test found next to them.

    Raises `CepError` when the rules themselves do not load or compile: no test can say
    anything about a library that does not compile.
    """
    import time

    loaded = load_paths(paths)
    compiled = loaded.compile()
    # as the service runs them: NFA programs, then SQL programs (`nfa.mixed` rule order)
    programs: list[RuleProgram] = [p for p in compiled.rules if p.info.enabled]
    by_name = {p.info.name: p for p in compiled.rules}
    results: list[TestResult] = []
    for file, test in loaded.tests:
        started = time.perf_counter()
        result = _run_one(file, test, compiled.schema, programs, by_name)
        result.seconds = time.perf_counter() - started
        results.append(result)
    return results


def _run_one(
    file: str,
    test: Mapping[str, Any],
    schema: Schema,
    programs: list[RuleProgram],
    by_name: Mapping[str, RuleProgram],
) -> TestResult:
    name = str(test.get("name", "(unnamed)"))
    rule = str(test.get("rule", ""))
    result = TestResult(file, name, rule, passed=False)
    try:
        if rule not in by_name:
            raise TestSpecError(f"unknown rule {rule!r}")
        expected = _expected(test.get("expect"), rule)
        records = _records(test.get("events") or [], schema)
        watermarks = _watermarks(test.get("watermarks") or [], schema, len(records))
    except TestSpecError as exc:
        result.problems.append(f"invalid test: {exc}")
        return result
    result.expected = expected
    if not by_name[rule].info.enabled:  # a disabled rule is still tested, on its own
        programs = [*programs, by_name[rule]]
        programs.sort(key=lambda p: isinstance(p, SqlProgram))  # NFA programs first
    result.actual = _run_engine(schema, programs, records, watermarks, rule)
    result.problems = compare(expected, result.actual)
    result.passed = not result.problems
    return result


def _records(events: Sequence[Any], schema: Schema) -> list[tuple[str, dict[str, object]]]:
    """The test's events as (stream, fields) with timestamp fields in epoch milliseconds."""
    streams = {s.name: s for s in schema.streams}
    records: list[tuple[str, dict[str, object]]] = []
    for index, raw in enumerate(events):
        if not isinstance(raw, Mapping) or "stream" not in raw:
            raise TestSpecError(f"event {index} needs `stream:` and its fields")
        stream_name = str(raw["stream"])
        stream = streams.get(stream_name)
        if stream is None:
            raise TestSpecError(f"event {index}: unknown stream {stream_name!r}")
        values = {k: v for k, v in raw.items() if k != "stream"}
        known = {f for f, _ in stream.fields}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TestSpecError(
                f"event {index}: {stream_name} has no field(s) {', '.join(unknown)}"
            )
        if stream.key not in values:
            raise TestSpecError(f"event {index}: missing key field `{stream.key}`")
        for field_name, type_ in stream.fields:
            if type_ is Type.TIMESTAMP and values.get(field_name) is not None:
                stamp = parse_timestamp(values[field_name])
                if stamp is None:
                    raise TestSpecError(
                        f"event {index}: `{field_name}` is not ISO-8601 with a zone or epoch ms"
                    )
                values[field_name] = stamp
        if stream.time_field is not None and stream.time_field not in values:
            raise TestSpecError(f"event {index}: missing time field `{stream.time_field}`")
        records.append((stream_name, values))
    return records


def _watermarks(
    raw: Sequence[Any], schema: Schema, n_events: int
) -> dict[int, list[tuple[int, int]]]:
    """`{after event index: [(stream index, watermark ms)]}` from the optional `watermarks`."""
    out: dict[int, list[tuple[int, int]]] = {}
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise TestSpecError(f"watermark {i} must be a mapping with after, stream, ts")
        try:
            stream = schema.stream_index(str(item.get("stream")))
        except (KeyError, ValueError):
            raise TestSpecError(f"watermark {i}: unknown stream {item.get('stream')!r}") from None
        stamp = parse_timestamp(item.get("ts"))
        after = item.get("after", n_events - 1)
        if stamp is None or not isinstance(after, int):
            raise TestSpecError(f"watermark {i}: needs `ts` and an integer `after`")
        out.setdefault(after, []).append((stream, stamp))
    return out


def _expected(raw: Any, rule: str) -> list[dict[str, Any]]:
    if raw is None:
        raise TestSpecError("`expect:` is required (use `expect: []` for no alert)")
    if not isinstance(raw, list):
        raise TestSpecError("`expect:` must be a list of alerts")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping) or "key" not in item:
            raise TestSpecError(f"expected alert {i} needs at least `key`")
        if str(item.get("rule", rule)) != rule:
            raise TestSpecError(
                f"expected alert {i} names rule {item.get('rule')!r}; only {rule!r} is run"
            )
        out.append({"rule": rule, **item, "key": str(item["key"])})
    return out


def _run_engine(
    schema: Schema,
    programs: list[RuleProgram],
    records: list[tuple[str, dict[str, object]]],
    watermarks: Mapping[int, list[tuple[int, int]]],
    rule: str,
) -> list[dict[str, Any]]:
    """Feed the events (one at a time, so watermarks interleave) and finish; the rule's alerts."""
    pool, keys = StringPool(), StringPool()
    nfa = [p for p in programs if isinstance(p, Program)]
    sql = [p for p in programs if isinstance(p, SqlProgram)]
    engine: ReferenceEngine | MixedEngine = (
        MixedEngine.create(nfa, sql, pool, ReferenceEngine, jit=False)
        if sql
        else ReferenceEngine(nfa, pool)
    )
    out = EngineOutput()
    for index, record in enumerate(records):
        out.extend(engine.process(batch_from_records(schema, [record], pool, keys, index)))
        for stream, stamp in watermarks.get(index, []):
            out.extend(engine.advance_watermark(stream, stamp))
    out.extend(engine.finish())
    alerts: list[dict[str, Any]] = []
    for match in [*out.matches, *out.timeouts]:
        program = programs[match.rule]
        if program.info.name != rule:
            continue
        alerts.append(rule_alert(match, program, keys.value(match.key), str))
    alerts.sort(key=lambda a: (a["time"], a["start"]))
    return alerts


def compare(expected: list[dict[str, Any]], actual: list[dict[str, Any]]) -> list[str]:
    """Problems found matching expected alerts to distinct actual alerts; [] when equal."""
    problems: list[str] = []
    unused = list(range(len(actual)))
    for i, want in enumerate(expected):
        found = next((j for j in unused if not _mismatches(want, actual[j])), None)
        if found is not None:
            unused.remove(found)
            continue
        same_key = [j for j in unused if actual[j]["key"] == want["key"]]
        if same_key:
            reasons = "; ".join(_mismatches(want, actual[same_key[0]]))
            problems.append(f"expected alert #{i + 1} differs from the actual alert: {reasons}")
        else:
            problems.append(f"expected alert #{i + 1} (key {want['key']!r}) did not fire")
    for j in unused:
        problems.append(f"unexpected alert (key {actual[j]['key']!r}, time {actual[j]['time']})")
    if len(expected) != len(actual):
        problems.insert(0, f"expected {len(expected)} alert(s), got {len(actual)}")
    return problems


def _mismatches(want: Mapping[str, Any], got: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    if want["key"] != got["key"]:
        out.append(f"key: expected {want['key']!r}, got {got['key']!r}")
    if bool(want.get("timed_out", False)) != got["timed_out"]:
        out.append(f"timed_out: expected {bool(want.get('timed_out'))}, got {got['timed_out']}")
    fields = want.get("fields") or {}
    for name, value in fields.items():
        if name not in got["fields"]:
            out.append(f"field {name}: expected {value!r}, the alert has no such field")
        elif not _equal(value, got["fields"][name]):
            out.append(f"field {name}: expected {value!r}, got {got['fields'][name]!r}")
    if "events" in want:
        wanted = [str(e) for e in want["events"]]
        ids = [e["id"] for e in got["events"]]
        if wanted != ids:
            out.append(f"events: expected {wanted}, got {ids}")
    return out


def _equal(want: object, got: object) -> bool:
    if isinstance(want, bool) or isinstance(got, bool):
        return want is got or (want == got and type(want) is type(got))
    if isinstance(want, int | float) and isinstance(got, int | float):
        return math.isclose(want, got, rel_tol=1e-6, abs_tol=1e-9)
    return want == got


def _brief(alert: Mapping[str, Any]) -> str:
    parts = [f"key={alert['key']}"]
    if alert.get("timed_out"):
        parts.append("timed_out")
    if alert.get("fields"):
        parts.append(
            "fields={" + ", ".join(f"{k}: {v!r}" for k, v in alert["fields"].items()) + "}"
        )
    if "events" in alert and alert["events"] and isinstance(alert["events"][0], Mapping):
        parts.append("events=[" + ", ".join(str(e["id"]) for e in alert["events"]) + "]")
    elif "events" in alert:
        parts.append(f"events={alert['events']}")
    return " ".join(parts)


def format_results(results: Sequence[TestResult]) -> str:
    """A report: one line per test, and for a failure the problems, expected beside actual."""
    lines: list[str] = []
    for r in results:
        status = "PASS" if r.passed else "FAIL"
        lines.append(f"{status} {r.file} :: {r.rule} :: {r.name} ({r.seconds * 1000:.0f} ms)")
        if r.passed:
            continue
        lines.extend(f"    {p}" for p in r.problems)
        rows = max(len(r.expected), len(r.actual))
        for i in range(rows):
            want = _brief(r.expected[i]) if i < len(r.expected) else "(none)"
            got = _brief(r.actual[i]) if i < len(r.actual) else "(none)"
            lines.append(f"    #{i + 1} expected: {want}")
            lines.append(f"       actual:   {got}")
    failed = sum(1 for r in results if not r.passed)
    lines.append(f"{len(results) - failed} passed, {failed} failed, {len(results)} test(s)")
    return "\n".join(lines)


def exit_code(results: Sequence[TestResult]) -> int:
    """0 when every test passed, 1 otherwise."""
    return EXIT_OK if all(r.passed for r in results) else EXIT_FAILED


def main_test(paths: list[str]) -> int:
    """`cep test PATH...`: run the rule tests under `paths`, print the report, exit code."""
    try:
        results = run_rule_tests(paths)
    except CepError as exc:
        print(exc.render(), file=sys.stderr)
        return EXIT_FAILED
    print(format_results(results))
    if not results:
        print("no rule tests found", file=sys.stderr)
    return exit_code(results)


if __name__ == "__main__":
    sys.exit(main_test(sys.argv[1:] or ["patterns"]))
