"""The shipped rule library: it compiles, every rule is tested both ways, the tests pass,
and an hour of generated traffic replayed through the reference engine finds every injected
fraud scenario (recall 1.0 per rule)."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from cep.errors import Severity
from cep.loader import compile_paths, load_paths
from nfa.batch import StringPool, batch_from_records
from nfa.reference import ReferenceEngine
from service.generator import Generator
from service.ruletest import format_results, run_rule_tests
from service.scenarios import SCENARIOS

LIBRARY = Path(__file__).resolve().parents[2] / "patterns"


def test_library_compiles_without_errors() -> None:
    compiled = compile_paths([LIBRARY])
    assert not [w for w in compiled.warnings if w.severity is Severity.ERROR]
    assert len(compiled.programs) >= 10


def test_rule_names_are_unique_and_described() -> None:
    rules = load_paths([LIBRARY]).rule_file.rules
    names = [r.name for r in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert rule.title or rule.description, f"{rule.name} has no title or description"


def test_library_uses_the_language_broadly() -> None:
    rules = load_paths([LIBRARY]).rule_file.rules
    multi_stream = [r.name for r in rules if len(r.streams) > 1]
    assert len(multi_stream) >= 3, multi_stream
    absence = [r.name for r in rules if r.pattern is not None and r.pattern.steps[-1].negated]
    assert len(absence) >= 2, absence


def test_every_rule_has_a_firing_and_a_quiet_test() -> None:
    loaded = load_paths([LIBRARY])
    firing: Counter[str] = Counter()
    quiet: Counter[str] = Counter()
    for _, test in loaded.tests:
        (firing if test.get("expect") else quiet)[test["rule"]] += 1
    for rule in loaded.rule_file.rules:
        assert firing[rule.name] >= 1, f"{rule.name} has no test that must fire"
        assert quiet[rule.name] >= 1, f"{rule.name} has no test that must not fire"


def test_all_rule_tests_pass() -> None:
    results = run_rule_tests([LIBRARY])
    assert results
    assert all(r.passed for r in results), format_results(results)


def test_every_rule_has_a_scenario_in_the_generator() -> None:
    names = {r.name for r in load_paths([LIBRARY]).rule_file.rules}
    assert names == set(SCENARIOS)


def test_an_hour_of_traffic_finds_every_injected_scenario() -> None:
    """Recall 1.0 per rule on one hour of event time (~85k events with disorder and late
    events); the reference engine is pure Python, so the rate is kept modest for CI."""
    compiled = compile_paths([LIBRARY])
    names = [p.info.name for p in compiled.programs]
    generator = Generator(
        seed=11, rate=20.0, duration_s=3600, fraud_ratio=0.004, disorder_ms=10_000, late_ratio=0.001
    )
    events = list(generator.events())
    assert len(events) > 50_000

    started = time.perf_counter()
    pool, keys = StringPool(), StringPool()
    engine = ReferenceEngine(list(compiled.programs), pool)
    matches, late = [], 0
    chunk = 20_000
    for first in range(0, len(events), chunk):
        batch = batch_from_records(
            compiled.schema, events[first : first + chunk], pool, keys, first
        )
        out = engine.process(batch)
        matches += out.matches
        late += len(out.late)
    out = engine.finish()
    matches += out.matches
    elapsed = time.perf_counter() - started

    found = {(names[m.rule], keys.value(m.key)) for m in matches}
    labels_by_rule: dict[str, list[str]] = defaultdict(list)
    for label in generator.labels:
        labels_by_rule[label.scenario].append(label.key)
    missed = {
        rule: [key for key in keys_ if (rule, key) not in found]
        for rule, keys_ in labels_by_rule.items()
    }
    assert set(labels_by_rule) == set(SCENARIOS), "every rule gets injected scenarios"
    assert all(not m for m in missed.values()), missed
    assert late > 0, "late events reach the late output"
    assert elapsed < 60, f"replay took {elapsed:.1f}s"


RULE = """\
streams: |
  stream txns key card_id time ts fields { card_id: string, amount: float, ts: timestamp }
rules:
  - name: big
    title: One big purchase
    from: [txns]
    pattern: |
      big
    where: |
      big: amount > 100.0
    emit: |
      to "fraud.alerts" { amount: big.amount }
tests:
  - name: fires
    rule: big
    events:
      - {stream: txns, card_id: c1, amount: 500.0, ts: "2026-01-01T10:00:00Z"}
    expect:
      - {rule: big, key: c1, fields: {amount: 500.0}, events: [0]}
  - name: wrong expectation
    rule: big
    events:
      - {stream: txns, card_id: c1, amount: 500.0, ts: 1767261600000}
      - {stream: txns, card_id: c2, amount: 700.0, ts: 1767261601000}
    expect:
      - {rule: big, key: c1, fields: {amount: 400.0}}
  - name: bad stream
    rule: big
    events:
      - {stream: nope, card_id: c1, ts: 0}
    expect: []
"""


def test_runner_reports_expected_beside_actual(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from service.ruletest import main_test

    path = tmp_path / "big.yaml"
    path.write_text(RULE)
    results = run_rule_tests([path])
    assert [r.passed for r in results] == [True, False, False]
    report = format_results(results)
    assert "field amount: expected 400.0, got 500.0" in report
    assert "unexpected alert (key 'c2'" in report
    assert "#1 expected: key=c1 fields={amount: 400.0}" in report
    assert "actual:   key=c1 fields={amount: 500.0} events=[0]" in report
    assert "invalid test: event 0: unknown stream 'nope'" in report
    assert main_test([str(path)]) == 1
    assert "1 passed, 2 failed" in capsys.readouterr().out
    assert main_test([str(LIBRARY)]) == 0
