"""Flatten a built automaton into the arrays of `nfa.program.Program`."""

from __future__ import annotations

import numpy as np

from cep.automaton import Automaton, BState
from cep.plans import Formula
from nfa.program import F_AND, F_NOT, F_OR, F_TRUE


def to_postfix(formula: Formula, out: list[int]) -> None:
    tag = formula[0]
    if tag == "true":
        out.append(F_TRUE)
    elif tag == "atom":
        out.append(formula[1])
    elif tag == "not":
        to_postfix(formula[1], out)
        out.append(F_NOT)
    else:
        to_postfix(formula[1], out)
        to_postfix(formula[2], out)
        out.append(F_AND if tag == "and" else F_OR)


def flatten(automaton: Automaton) -> dict[str, object]:
    """The automaton as the arrays of `nfa.program.Program`, unreachable states dropped."""
    reachable: list[BState] = []
    seen: set[int] = set()
    todo = [automaton.start]
    while todo:
        state = todo.pop()
        if state.id in seen:
            continue
        seen.add(state.id)
        reachable.append(state)
        todo.extend(reversed([e[1] for e in state.edges]))
    reachable.sort(key=lambda s: (s is not automaton.start, s.id))
    index = {s.id: i for i, s in enumerate(reachable)}
    state_edges, formulas = [0], [0]
    actions: list[int] = []
    targets: list[int] = []
    stages: list[int] = []
    code: list[int] = []
    for state in reachable:
        for action, target, stage, condition in state.edges:
            actions.append(int(action))
            targets.append(index[target.id])
            stages.append(stage)
            to_postfix(condition, code)
            formulas.append(len(code))
        state_edges.append(len(actions))

    def arr(values: list[int]) -> np.ndarray:
        return np.asarray(values, dtype=np.int32)

    return {
        "start_state": 0,
        "state_names": tuple(s.name for s in reachable),
        "state_kind": arr([int(s.kind) for s in reachable]),
        "state_stage": arr([s.stage for s in reachable]),
        "state_edges": arr(state_edges),
        "edge_action": arr(actions),
        "edge_target": arr(targets),
        "edge_stage": arr(stages),
        "edge_formula": arr(formulas),
        "formula_code": arr(code),
    }
