"""What the automaton builder works from: one plan per pattern element, and edge formulas.

A plan is FlinkCEP's Pattern with its Quantifier, flattened into plain values by the
compiler; formulas are the conditions of edges, over atoms (compiled conditions).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

Formula = tuple[Any, ...]  # ("true",) | ("atom", i) | ("not", f) | ("and", f, g) | ("or", f, g)
TRUE: Formula = ("true",)


def atom(i: int) -> Formula:
    return ("atom", i)


def f_not(f: Formula) -> Formula:
    return ("not", f)


def f_and(f: Formula | None, g: Formula | None) -> Formula | None:
    if f is None:
        return g
    if g is None:
        return f
    return ("and", f, g)


class Consuming(enum.Enum):
    STRICT = "strict"
    NEXT = "skip till next"
    ANY = "skip till any"
    NOT_NEXT = "not next"
    NOT_FOLLOW = "not followed by"


@dataclass(frozen=True)
class StagePlan:
    """One stage as the builder sees it (FlinkCEP's Pattern with its Quantifier)."""

    name: str
    stage: int
    take: Formula
    consuming: Consuming
    inner: Consuming = Consuming.NEXT
    times_from: int = 1
    times_to: int = 1
    looping: bool = False
    optional: bool = False
    greedy: bool = False
    until: Formula | None = None


@dataclass(frozen=True)
class GroupPlan:
    """A parenthesised group: alternatives of sub-sequences, with a quantifier.

    Compiled as FlinkCEP compiles a GroupPattern (each alternative's states built with the
    group's sink); several alternatives hang off a branch state by PROCEED edges, tried in
    the order written.
    """

    name: str
    alternatives: tuple[tuple[Plan, ...], ...]
    consuming: Consuming
    inner: Consuming = Consuming.NEXT
    times_from: int = 1
    times_to: int = 1
    looping: bool = False
    optional: bool = False
    greedy: bool = False
    until: Formula | None = None
    stage: int = -1
    take: Formula = ("true",)


Plan = StagePlan | GroupPlan
