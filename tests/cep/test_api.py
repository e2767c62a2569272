"""The Python API builds the same rules as the DSL and runs them without the daemon."""

from __future__ import annotations

import pytest

from cep.api import Pattern, Rule, RuleEngine, Stream, agg, col, count
from cep.compiler import compile_rules
from cep.errors import RuleCheckError
from cep.parser import parse_text

TXNS = Stream(
    "txns",
    key="card_id",
    time="ts",
    fields={"card_id": "string", "amount": "float", "ts": "timestamp"},
)
PATTERN = (
    Pattern.begin("small")
    .where(col("amount") < 5)
    .times_or_more(3)
    .consecutive()
    .next("big")
    .where(col("amount") > 500)
    .within("10m")
    .skip_past_last()
)
RULE = Rule(
    "card_testing",
    TXNS,
    PATTERN,
    emit_to="alerts",
    emit={
        "tests": count("small"),
        "amount": col("big.amount"),
        "total": agg("sum", "small.amount"),
    },
)
DSL = """
stream txns key card_id time ts fields { card_id: string, amount: float, ts: timestamp }
rule card_testing from txns
  pattern small{3,} consecutive next big
  where small: amount < 5
        big: amount > 500
  within 10m skip past last
  emit to "alerts" { tests: count(small), amount: big.amount, total: sum(small.amount) }
"""


def test_builder_compiles_to_the_dsl_program() -> None:
    engine = RuleEngine([RULE])
    (from_api,) = engine.compiled.programs
    (from_dsl,) = compile_rules(parse_text(DSL)).programs
    assert from_api.fingerprint() == from_dsl.fingerprint()


def test_engine_object_matches_batches() -> None:
    engine = RuleEngine([RULE])
    events = [
        ("txns", {"card_id": "c1", "amount": a, "ts": i * 1000})
        for i, a in enumerate([1, 2, 3, 900, 2])
    ]
    alerts = engine.process(events[:2]) + engine.process(events[2:]) + engine.finish()
    assert len(alerts) == 1
    assert alerts[0]["key"] == "c1" and alerts[0]["fields"] == {
        "tests": 3,
        "amount": 900.0,
        "total": 6.0,
    }


def test_api_mistakes_get_the_same_diagnostics() -> None:
    bad = Rule("bad", TXNS, Pattern.begin("a").where(col("amont") < 5))
    with pytest.raises(RuleCheckError) as caught:
        RuleEngine([bad])
    assert [d.code for d in caught.value.diagnostics] == ["E201"]


def test_conditions_are_not_python_booleans() -> None:
    with pytest.raises(TypeError):
        bool(col("a") < 1)
