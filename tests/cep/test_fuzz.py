"""Random and mutated rule texts raise nothing but the language's own errors."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from cep.errors import CepError
from cep.loader import load_text
from cep.parser import parse_text

SEED = """
stream txns key card_id time ts out_of_order 30s fields { card_id: string, amount: float, country: string, ts: timestamp }
const RISKY = ["NG", "RU"]
const REGION = {"FR": "EU"}
rule r "title" version 2 severity high labels [a, "b"]
  from txns
  pattern small{3,} consecutive next big followed by any c not followed by d
  where small: amount < 5.00 and country in RISKY and REGION[country] == "EU"
        big: amount > 500.00 - sum(small.amount) and lower(country) != "x"
        c: amount between 1 and 2 or country is null
        d: count(small) > 2
  within 10m skip to last small
  emit to "alerts" { n: count(small), amount: big.amount }
"""
TOKENS = [
    "rule",
    "stream",
    "pattern",
    "where",
    "next",
    "followed",
    "by",
    "not",
    "(",
    ")",
    "{",
    "}",
    ",",
    ":",
    "+",
    "*",
    "?",
    "10m",
    "-",
    '"',
    "and",
    "or",
    "in",
    "[",
    "]",
    "x",
    "1.5",
    "\n",
]


def _compile(text: str, name: str = "fuzz.cep") -> None:
    with contextlib.suppress(CepError):
        load_text(text, name).compile()


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_rules_raise_only_language_errors(data: st.DataObject) -> None:
    text = SEED
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text)))
        action = data.draw(st.sampled_from(["delete", "insert", "token"]))
        if action == "delete":
            text = text[:at] + text[at + data.draw(st.integers(1, 8)) :]
        elif action == "insert":
            text = text[:at] + data.draw(st.text(max_size=4)) + text[at:]
        else:
            text = text[:at] + " " + data.draw(st.sampled_from(TOKENS)) + " " + text[at:]
    _compile(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_random_text_raises_only_language_errors(text: str) -> None:
    _compile(text)
    _compile(text, "fuzz.yaml")


def test_seed_itself_compiles() -> None:
    parse_text(SEED)
    load_text(SEED, "seed.cep").compile()
