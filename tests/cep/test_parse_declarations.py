"""Streams, constants and rule metadata parse into the AST."""

from __future__ import annotations

import pytest

from cep import ast
from cep.parser import parse_text


def test_stream_declaration() -> None:
    f = parse_text(
        "stream txns key card_id time ts out_of_order 30s idle 2m\n"
        "  fields { card_id: string, amount: float, ok: bool, n: int, ts: timestamp }"
    )
    (s,) = f.streams
    assert s.name == "txns" and s.key == "card_id" and s.time_field == "ts"
    assert s.time_source is ast.TimeSource.FIELD
    assert s.out_of_order == ast.Duration(30_000) and s.idle == ast.Duration(120_000)
    assert [(x.name, x.type) for x in s.fields] == [
        ("card_id", "string"),
        ("amount", "float"),
        ("ok", "bool"),
        ("n", "int"),
        ("ts", "timestamp"),
    ]


@pytest.mark.parametrize("source", [ast.TimeSource.KAFKA, ast.TimeSource.PROCESSING])
def test_stream_time_sources(source: ast.TimeSource) -> None:
    (s,) = parse_text(f"stream s key k time {source.value} fields {{ k: string }}").streams
    assert s.time_source is source and s.time_field is None


@pytest.mark.parametrize(
    ("text", "millis"),
    [("500ms", 500), ("7s", 7000), ("10m", 600_000), ("2h", 7_200_000), ("1d", 86_400_000)],
)
def test_duration_units(text: str, millis: int) -> None:
    (rule,) = parse_text(f"rule r from s pattern a within {text}").rules
    assert rule.within == ast.Duration(millis)


def test_constants_lists_and_tables() -> None:
    f = parse_text(
        'const LIMIT = 10000.00\nconst NEG = -3\nconst RISKY = ["NG", "RU"]\n'
        'const REGION = {"FR": "EU", "US": "NA"}'
    )
    values = {c.name: c.value for c in f.consts}
    assert values["LIMIT"] == ast.Literal(10000.0, values["LIMIT"].span)
    assert values["NEG"].value == -3  # type: ignore[union-attr]
    assert isinstance(values["RISKY"], ast.ListLiteral)
    assert [i.value for i in values["RISKY"].items] == ["NG", "RU"]
    assert isinstance(values["REGION"], ast.MapLiteral)
    assert [(k.value, v.value) for k, v in values["REGION"].entries] == [("FR", "EU"), ("US", "NA")]


def test_rule_metadata() -> None:
    (rule,) = parse_text(
        'rule card_testing "Tiny then large" version 3 severity critical labels [card, "card testing"]\n'
        '  enabled false description "longer text" from txns, logins pattern a'
    ).rules
    assert rule.name == "card_testing" and rule.title == "Tiny then large"
    assert rule.version == 3 and rule.severity == "critical"
    assert rule.labels == ("card", "card testing") and rule.enabled is False
    assert rule.description == "longer text" and rule.streams == ("txns", "logins")


def test_rule_defaults() -> None:
    (rule,) = parse_text("rule r from s pattern a").rules
    assert (rule.version, rule.severity, rule.enabled, rule.labels) == (1, "medium", True, ())
    assert rule.skip.kind is ast.SkipKind.NONE and rule.within is None


def test_output_and_timeout_output() -> None:
    (rule,) = parse_text(
        "rule r from s pattern a next b within 1m\n"
        '  emit to "alerts" { amount: b.amount, n: count(a), }\n'
        '  on timeout emit to "timeouts" { first: first(a.amount) }'
    ).rules
    assert rule.emit is not None and rule.emit.topic == "alerts"
    assert [f.name for f in rule.emit.fields] == ["amount", "n"]
    assert rule.on_timeout is not None and rule.on_timeout.topic == "timeouts"


def test_spans_point_at_the_text() -> None:
    text = "rule r from s\n  pattern a\n  where a: amount < 5"
    (rule,) = parse_text(text, "f.cep").rules
    (cond,) = rule.conditions
    assert (cond.span.file, cond.span.line, cond.span.column) == ("f.cep", 3, 9)
    assert (cond.expr.span.line, cond.expr.span.column) == (3, 12)


def test_comments_and_several_items() -> None:
    f = parse_text("# a comment\nrule a1 from s pattern x # trailing\nrule a2 from s pattern y\n")
    assert [r.name for r in f.rules] == ["a1", "a2"]
