"""Condition expressions: precedence, operators, functions, aggregates, lookups."""

from __future__ import annotations

from cep import ast
from cep.parser import parse_text


def expr(text: str) -> ast.Expr:
    (rule,) = parse_text(f"rule r from s pattern a where a: {text}").rules
    return rule.conditions[0].expr


def shape(node: ast.Expr) -> object:
    """A compact, span-free form of an expression, for readable assertions."""
    if isinstance(node, ast.Binary):
        return (node.op, shape(node.left), shape(node.right))
    if isinstance(node, ast.Unary):
        return (node.op, shape(node.operand))
    if isinstance(node, ast.Literal):
        return node.value
    if isinstance(node, ast.Name):
        return node.name
    if isinstance(node, ast.Qualified):
        return f"{node.qualifier}.{node.name}"
    if isinstance(node, ast.Call):
        return (node.function, *[shape(a) for a in node.args])
    if isinstance(node, ast.Lookup):
        return ("lookup", node.table, shape(node.key))
    if isinstance(node, ast.Member):
        target = (
            node.target.name
            if isinstance(node.target, ast.Name)
            else [i.value for i in node.target.items]
        )
        return ("not in" if node.negated else "in", shape(node.operand), target)
    if isinstance(node, ast.Between):
        return ("between", shape(node.operand), shape(node.low), shape(node.high), node.negated)
    if isinstance(node, ast.IsNull):
        return ("is not null" if node.negated else "is null", shape(node.operand))
    raise AssertionError(node)


def test_arithmetic_precedence() -> None:
    assert shape(expr("a + b * 2 - -c > 1")) == (
        ">",
        ("-", ("+", "a", ("*", "b", 2)), ("-", "c")),
        1,
    )


def test_boolean_precedence() -> None:
    assert shape(expr("not x or y and z")) == ("or", ("not", "x"), ("and", "y", "z"))


def test_comparisons() -> None:
    for op in ("==", "!=", "<", "<=", ">", ">="):
        assert shape(expr(f"x {op} 1")) == (op, "x", 1)


def test_membership_between_null() -> None:
    assert shape(expr('country in ["NG", "RU"]')) == ("in", "country", ["NG", "RU"])
    assert shape(expr("country not in RISKY")) == ("not in", "country", "RISKY")
    assert shape(expr("amount between 1 and 5 and ok")) == (
        "and",
        ("between", "amount", 1, 5, False),
        "ok",
    )
    assert shape(expr("amount not between 1 and 5")) == ("between", "amount", 1, 5, True)
    assert shape(expr("x is null")) == ("is null", "x")
    assert shape(expr("x is not null")) == ("is not null", "x")


def test_literals() -> None:
    assert shape(expr('x == \'single\' or y == "double\\"q"')) == (
        "or",
        ("==", "x", "single"),
        ("==", "y", 'double"q'),
    )
    assert shape(expr("x == true and y == null and z == 2.5e3 and d < 10m")) == (
        "and",
        ("and", ("and", ("==", "x", True), ("==", "y", None)), ("==", "z", 2500.0)),
        ("<", "d", ast.Duration(600_000)),
    )


def test_functions_aggregates_and_lookups() -> None:
    assert shape(expr('startswith(lower(merchant), "gift")')) == (
        "startswith",
        ("lower", "merchant"),
        "gift",
    )
    assert shape(expr("sum(a.amount) > 3 * avg(a.amount)")) == (
        ">",
        ("sum", "a.amount"),
        ("*", 3, ("avg", "a.amount")),
    )
    assert shape(expr("count(a) >= 2")) == (">=", ("count", "a"), 2)
    assert shape(expr('REGION[country] == "EU"')) == ("==", ("lookup", "REGION", "country"), "EU")
    assert shape(expr("distance_km(lat, lon, a.lat, a.lon) > 500")) == (
        ">",
        ("distance_km", "lat", "lon", "a.lat", "a.lon"),
        500,
    )
