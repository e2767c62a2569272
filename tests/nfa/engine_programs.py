"""Random rule texts for the differential tests: a small generator driven by a seed.

Texts come from a seed in a small range so the compiled kernels (cached by generated
source) are reused between examples and runs.
"""

from __future__ import annotations

import random

from cep.compiler import CompiledRules, compile_rules
from cep.errors import CepError
from cep.parser import parse_text

STREAM = (
    "stream s key k time ts out_of_order {ooo} "
    "fields {{ k: string, x: int, y: float, ts: timestamp }}\n"
)
STAGES = "abcd"


def _condition(rng: random.Random, stage: int, looping: bool) -> str:
    name = STAGES[stage]
    simple = [
        f"x {rng.choice(['<', '<=', '>', '==', '!='])} {rng.randint(0, 4)}",
        f"y {rng.choice(['<', '>'])} {rng.choice(['1.5', '2.5', '0.5'])}",
        f"x is not null and x {rng.choice(['<', '>'])} {rng.randint(1, 3)}",
        f"x % 2 == {rng.randint(0, 1)}",
        f"x / {rng.choice([0, 2, 2, 2])} < 1",
        f"x + {rng.randint(0, 2)} > y",
    ]
    visible = [STAGES[s] for s in range(stage)] + ([name] if looping else [])
    iterative: list[str] = []
    for v in visible:
        iterative += [
            f"sum({v}.x) {rng.choice(['<', '>'])} {rng.randint(2, 8)}",
            f"count({v}) {rng.choice(['<', '>='])} {rng.randint(1, 3)}",
            f"{v}.y < y",
            f"avg({v}.y) > {rng.choice(['1.0', '2.0'])}",
            f"count_distinct({v}.x) >= 2",
            f"max({v}.x) - min({v}.x) < {rng.randint(1, 3)}",
            f"first({v}.x) == x",
        ]
    parts = [rng.choice(simple)]
    if iterative and rng.random() < 0.5:
        parts.append(rng.choice(iterative))
    return f" {rng.choice(['and', 'or'])} ".join(parts)


def rule_text(seed: int) -> str:
    rng = random.Random(seed)
    n = rng.randint(1, 4)
    pattern: list[str] = []
    conditions: list[str] = []
    negated_last = False
    for i in range(n):
        name = STAGES[i]
        negated = i > 0 and rng.random() < 0.25
        if i > 0:
            if negated:
                pattern.append(rng.choice(["not next", "not followed by"]))
            else:
                pattern.append(rng.choice(["next", "followed by", "followed by any"]))
        element = name
        looping = False
        if not negated and rng.random() < 0.6:
            q = rng.choice(["?", "*", "+", "{2}", "{2,}", "{1,3}"])
            element += q
            looping = q in ("*", "+", "{2,}", "{2}", "{1,3}")
            if looping and q != "?":
                element += rng.choice(["", "", " consecutive", " combinations"])
                if rng.random() < 0.2:
                    element += " greedy"
                if rng.random() < 0.2:
                    element += f" until (x == {rng.randint(0, 4)})"
        pattern.append(element)
        conditions.append(f"{name}: {_condition(rng, i, looping)}")
        negated_last = negated
    within = rng.choice(["", "within 5s", "within 3s"]) if not negated_last else "within 4s"
    skip = rng.choice(["", "skip to next", "skip past last", "skip to first a", "skip to last a"])
    out = ["rule r", "from s", "pattern " + " ".join(pattern), "where " + "\n  ".join(conditions)]
    if within:
        out.append(within)
    if skip:
        out.append(skip)
    out.append('emit to "o" { n: count(a), s: sum(a.x), l: last(a.y) }')
    if within and rng.random() < 0.5:
        out.append('on timeout emit to "t" { n: count(a) }')
    ooo = rng.choice(["0s", "1s", "2s"])
    return STREAM.format(ooo=ooo) + "\n".join(out) + "\n"


def compiled(seed: int) -> tuple[str, CompiledRules]:
    """The first text from `seed` onwards (deterministically) that compiles."""
    for attempt in range(100):
        text = rule_text(seed * 1000 + attempt)
        try:
            return text, compile_rules(parse_text(text, "random.cep"))
        except CepError:
            continue
    raise AssertionError(f"no valid rule from seed {seed}")
