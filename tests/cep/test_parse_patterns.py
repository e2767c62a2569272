"""Pattern syntax: contiguity, quantifiers, loop modifiers, negation, skip strategies."""

from __future__ import annotations

import pytest

from cep import ast
from cep.parser import parse_text


def pattern(text: str, tail: str = "") -> ast.Rule:
    (rule,) = parse_text(f"rule r from s pattern {text} {tail}").rules
    return rule


def stages(rule: ast.Rule) -> list[ast.Stage]:
    assert rule.pattern is not None
    return [s.element for s in rule.pattern.steps]  # type: ignore[misc]


@pytest.mark.parametrize(
    ("connector", "contiguity", "negated"),
    [
        ("next", ast.Contiguity.STRICT, False),
        ("followed by", ast.Contiguity.RELAXED, False),
        ("followed by any", ast.Contiguity.ANY, False),
        ("not next", ast.Contiguity.STRICT, True),
        ("not followed by", ast.Contiguity.RELAXED, True),
    ],
)
def test_connectors(connector: str, contiguity: ast.Contiguity, negated: bool) -> None:
    rule = pattern(f"a {connector} b")
    assert rule.pattern is not None
    step = rule.pattern.steps[1]
    assert (step.contiguity, step.negated) == (contiguity, negated)


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("?", 0, 1),
        ("*", 0, None),
        ("+", 1, None),
        ("{3}", 3, 3),
        ("{2,}", 2, None),
        ("{2,5}", 2, 5),
        ("", 1, 1),
    ],
)
def test_quantifiers(text: str, low: int, high: int | None) -> None:
    (stage,) = stages(pattern(f"a{text}"))
    assert (stage.quantifier.min, stage.quantifier.max) == (low, high)


@pytest.mark.parametrize(
    ("modifier", "inner"),
    [
        ("consecutive", ast.LoopContiguity.CONSECUTIVE),
        ("combinations", ast.LoopContiguity.COMBINATIONS),
    ],
)
def test_loop_contiguity(modifier: str, inner: ast.LoopContiguity) -> None:
    (stage,) = stages(pattern(f"a+ {modifier}"))
    assert stage.inner is inner


def test_greedy_and_until() -> None:
    (stage,) = stages(pattern("a{2,} greedy until (amount > 100)"))
    assert stage.greedy
    assert isinstance(stage.until, ast.Binary) and stage.until.op == ">"


def test_stage_streams() -> None:
    a, b = stages(pattern("reset: account next login: logins"))
    assert (a.name, a.stream, b.name, b.stream) == ("reset", "account", "login", "logins")


def test_groups_and_alternation_parse() -> None:
    rule = pattern("a next (b followed by c | d)+ next e")
    assert rule.pattern is not None
    group = rule.pattern.steps[1].element
    assert isinstance(group, ast.Group)
    assert len(group.alternatives) == 2 and group.quantifier.max is None


@pytest.mark.parametrize(
    ("text", "kind", "stage"),
    [
        ("none", ast.SkipKind.NONE, None),
        ("to next", ast.SkipKind.TO_NEXT, None),
        ("past last", ast.SkipKind.PAST_LAST, None),
        ("to first b", ast.SkipKind.TO_FIRST, "b"),
        ("to last b", ast.SkipKind.TO_LAST, "b"),
    ],
)
def test_skip_strategies(text: str, kind: ast.SkipKind, stage: str | None) -> None:
    rule = pattern("a next b", f"skip {text}")
    assert (rule.skip.kind, rule.skip.stage) == (kind, stage)


def test_where_binds_each_stage() -> None:
    rule = pattern("a next b", "where a: amount < 5\n b: amount > 500")
    assert [c.stage for c in rule.conditions] == ["a", "b"]
