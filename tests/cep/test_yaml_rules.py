"""YAML rule files: metadata from YAML, the DSL parts in block scalars, tests collected."""

from __future__ import annotations

from pathlib import Path

import pytest

from cep import ast
from cep.errors import RuleSyntaxError
from cep.loader import load_paths, load_text

RULES = """\
streams: |
  stream txns key card_id time ts fields { card_id: string, amount: float, ts: timestamp }
  const SMALL = 5.00

rules:
  - name: card_testing
    title: Tiny then large
    description: Card testing before a big purchase.
    version: 2
    severity: high
    labels: [card, testing]
    enabled: false
    from: [txns]
    pattern: |
      small{3,} consecutive next big
    where: |
      small: amount < SMALL
      big:   amount > 500.00
    within: 10m
    skip: past last
    emit: |
      to "fraud.alerts" { tests: count(small) }
    on_timeout: |
      to "fraud.timeouts" { seen: count(small) }
tests:
  - name: fires
    rule: card_testing
    events: []
    expect: []
"""


def test_yaml_rule_has_every_part() -> None:
    loaded = load_text(RULES, "rules.yaml")
    (rule,) = loaded.rule_file.rules
    assert (rule.name, rule.title, rule.version, rule.severity) == (
        "card_testing",
        "Tiny then large",
        2,
        "high",
    )
    assert (
        rule.labels == ("card", "testing") and rule.enabled is False and rule.streams == ("txns",)
    )
    assert rule.description == "Card testing before a big purchase."
    assert rule.within == ast.Duration(600_000) and rule.skip.kind is ast.SkipKind.PAST_LAST
    assert rule.emit is not None and rule.emit.topic == "fraud.alerts"
    assert rule.on_timeout is not None and rule.on_timeout.topic == "fraud.timeouts"
    assert [s.name for s in loaded.rule_file.streams] == ["txns"]
    assert [t["name"] for _, t in loaded.tests] == ["fires"]
    # Positions inside block scalars are the YAML file's own.
    (small, _big) = rule.conditions
    assert (small.span.line, small.span.column) == (17, 7)


def test_yaml_and_dsl_compile_to_the_same_program(tmp_path: Path) -> None:
    dsl = """
stream txns key card_id time ts fields { card_id: string, amount: float, ts: timestamp }
const SMALL = 5.00
rule card_testing version 2 severity high from txns
  pattern small{3,} consecutive next big
  where small: amount < SMALL
        big:   amount > 500.00
  within 10m skip past last
  emit to "fraud.alerts" { tests: count(small) }
"""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "rules.yaml").write_text(RULES)
    (tmp_path / "b" / "rules.cep").write_text(dsl)
    from_yaml = load_paths([tmp_path / "a"]).compile().programs[0]
    from_dsl = load_paths([tmp_path / "b"]).compile().programs[0]
    assert from_yaml.fingerprint() == from_dsl.fingerprint()


def test_invalid_yaml_is_a_diagnostic() -> None:
    with pytest.raises(RuleSyntaxError) as caught:
        load_text("rules:\n  - name: x\n   bad: [", "bad.yaml")
    (diag,) = caught.value.diagnostics
    assert diag.code == "E110" and diag.span.file == "bad.yaml"


def test_unknown_rule_field_is_reported() -> None:
    text = "rules:\n  - name: x\n    from: s\n    patern: |\n      a\n"
    with pytest.raises(RuleSyntaxError) as caught:
        load_text(text, "typo.yaml")
    assert any(d.code == "E111" and d.span.line == 4 for d in caught.value.diagnostics)
