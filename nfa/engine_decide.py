"""Decision tables: a state's successors precomputed from the bits of the pure atoms.

For a run in state s, the step kernel's decision (createDecisionGraph, the final state a
taken edge can proceed to, discarding on a stop state) depends only on the truth of the
atoms that the formulas of the edges it may visit read. When all of them are pure (read no
stage, so `pure_eval` already computed them per event) and there are at most
`MAX_TABLE_ATOMS`, the kernel reads the decision from a table indexed by those atoms'
bits instead of interpreting formulas. Tables are built here by running the kernel's
decision procedure (`nfa.kernel.step_key`) in Python on every combination of the bits.

Arrays (all int64), one variant v = 2 * state + is_start:
`tbase[v]` first table row (-1: no table), `tatom[v, b]` pure row of bit b (-1 past the
last), `toff[row]:toff[row + 1]` the row's decisions in `tdec` (successor state, index of
the taken edge in the decision's edge list or -1 for an ignore, the taken edge).
"""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt

from nfa.program import F_AND, F_NOT, F_TRUE, Action, Program, StateKind

MAX_TABLE_ATOMS = 6
_MAX_PUSHES = 10_000

I64 = npt.NDArray[np.int64]
Decision = tuple[int, int, int]


class _Unbounded(Exception):
    """A proceed cycle: leave the state to the interpreted path."""


def _closure_atoms(program: Program, state: int) -> set[int]:
    """Atoms of every edge a decision from `state` may evaluate (all formulas assumed true)."""
    atoms: set[int] = set()
    seen: set[int] = set()

    def proceed_closure(start: int) -> list[int]:
        out, todo = [], [start]
        visited: set[int] = set()
        while todo:
            s = todo.pop()
            if s in visited:
                continue
            visited.add(s)
            for e in program.edges_of(s):
                out.append(e)
                if program.edge_action[e] == Action.PROCEED:
                    todo.append(int(program.edge_target[e]))
        return out

    for e in proceed_closure(state):
        seen.add(e)
        if program.edge_action[e] != Action.PROCEED:
            seen.update(proceed_closure(int(program.edge_target[e])))
    for e in seen:
        atoms.update(c for c in program.formula(e) if c >= 0)
    return atoms


def _holds(program: Program, e: int, value: dict[int, bool]) -> bool:
    stack: list[bool] = []
    for code in program.formula(e):
        if code >= 0:
            stack.append(value[code])
        elif code == F_TRUE:
            stack.append(True)
        elif code == F_NOT:
            stack[-1] = not stack[-1]
        else:
            b, a = stack.pop(), stack.pop()
            stack.append((a and b) if code == F_AND else (a or b))
    return stack[-1]


def _final_after_proceed(program: Program, state: int, value: dict[int, bool]) -> int:
    stack, pushes = [state], 0
    while stack:
        current = stack.pop()
        for e in program.edges_of(current):
            if program.edge_action[e] == Action.PROCEED and _holds(program, e, value):
                target = int(program.edge_target[e])
                if program.state_kind[target] == StateKind.FINAL:
                    return target
                stack.append(target)
                pushes += 1
                if pushes > _MAX_PUSHES:
                    raise _Unbounded
    return -1


def decide(program: Program, state: int, is_start: bool, value: dict[int, bool]) -> list[Decision]:
    """The kernel's decisions for a run in `state`, given every atom's truth."""
    edges: list[int] = []
    stack, pushes = [state], 0
    while stack:
        s = stack.pop()
        for e in program.edges_of(s):
            if _holds(program, e, value):
                if program.edge_action[e] == Action.PROCEED:
                    stack.append(int(program.edge_target[e]))
                    pushes += 1
                    if pushes > _MAX_PUSHES:
                        raise _Unbounded
                else:
                    edges.append(e)
    out: list[Decision] = []
    for k, e in enumerate(edges):
        target = int(program.edge_target[e])
        if program.edge_action[e] == Action.IGNORE:
            if not is_start:
                out.append((target, -1, -1))
            continue
        out.append((target, k, e))
        final = _final_after_proceed(program, target, value)
        if final >= 0:
            out.append((final, k, e))
    kinds = [int(program.state_kind[d[0]]) for d in out]
    discard = StateKind.STOP in kinds
    return [
        d
        for d, kind in zip(out, kinds, strict=True)
        if kind != StateKind.STOP and not (discard and kind != StateKind.FINAL)
    ]


def decision_tables(program: Program, atom_row: I64) -> tuple[I64, I64, I64, I64]:
    """(tbase, tatom, toff, tdec) for the states whose decisions read only pure atoms."""
    n = program.n_states
    tbase = np.full(2 * n, -1, np.int64)
    tatom = np.full((2 * n, MAX_TABLE_ATOMS), -1, np.int64)
    offsets: list[int] = [0]
    decisions: list[Decision] = []
    for v in range(2 * n):
        state, is_start = divmod(v, 2)
        if is_start and state != program.start_state:
            continue
        atoms = sorted(_closure_atoms(program, state))
        if len(atoms) > MAX_TABLE_ATOMS or any(atom_row[a] < 0 for a in atoms):
            continue
        rows: list[list[Decision]] = []
        try:
            for bits in itertools.product((False, True), repeat=len(atoms)):
                value = dict(zip(atoms, reversed(bits), strict=True))
                rows.append(decide(program, state, bool(is_start), value))
        except _Unbounded:
            continue
        tbase[v] = len(offsets) - 1
        tatom[v, : len(atoms)] = [int(atom_row[a]) for a in atoms]
        for row in rows:
            decisions.extend(row)
            offsets.append(len(decisions))
    tdec = np.array(decisions, np.int64).reshape(-1, 3)
    return tbase, tatom, np.array(offsets, np.int64), tdec
