"""Build the NFA of a pattern, following FlinkCEP's NFACompiler.

The pattern is walked backwards from the final state; each stage becomes one or more
states whose edges TAKE, IGNORE or PROCEED. Conditions on edges are formulas over atoms
(atom i is stage i's take condition; until conditions get atoms of their own):

- strict contiguity: no IGNORE edge; relaxed: IGNORE when the stage's condition fails;
  skip-till-any: IGNORE always;
- a loop is a state with a TAKE edge to itself, an IGNORE edge (per its inner contiguity)
  to a twin state, and a PROCEED edge to what follows (only once the event does not
  satisfy the loop, when greedy);
- `{n,m}` unrolls into n mandatory and m-n optional states;
- not next / not followed by add PROCEED edges to STOP states; an absence at the end of
  a windowed pattern becomes a PENDING state that the window's timer turns into a match.

Where FlinkCEP's compiler copies states to keep negations scoped (transitive nots), this
builder does the same; the comments name the FlinkCEP method each part mirrors.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nfa.program import F_AND, F_NOT, F_OR, F_TRUE, Action, StateKind

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


@dataclass(eq=False)
class BState:
    id: int
    name: str
    kind: StateKind
    stage: int
    edges: list[tuple[Action, BState, int, Formula]] = field(default_factory=list)

    def add(self, action: Action, target: BState, condition: Formula, stage: int = -1) -> None:
        self.edges.append((action, target, stage if action is Action.TAKE else -1, condition))


@dataclass
class Automaton:
    states: list[BState]
    start: BState


class AutomatonBuilder:
    def __init__(self, plans: list[StagePlan], windowed: bool):
        self.plans = plans
        self.windowed = windowed
        self.states: list[BState] = []
        self.current = len(plans) - 1
        self.following: StagePlan | None = None
        self.stop_states: dict[str, BState] = {}
        self.original: dict[int, BState] = {}  # FlinkCEP's originalStateMap (greedy + until)

    # ------------------------------------------------------------------ helpers
    def new(self, name: str, kind: StateKind = StateKind.NORMAL, stage: int = -1) -> BState:
        state = BState(len(self.states), name, kind, stage)
        self.states.append(state)
        return state

    def stop(self, condition: Formula, name: str, stage: int) -> BState:
        """FlinkCEP's createStopState: one per negated stage, entered by taking the event."""
        state = self.stop_states.get(name)
        if state is None:
            state = self.new(f"{name}:stop", StateKind.STOP, stage)
            state.add(Action.TAKE, state, condition, stage)
            self.stop_states[name] = state
        return state

    def copy(self, state: BState) -> BState:
        clone = self.new(state.name, state.kind, state.stage)
        clone.edges = [(a, clone if t is state else t, s, c) for a, t, s, c in state.edges]
        return clone

    @property
    def plan(self) -> StagePlan:
        return self.plans[self.current]

    def ignore_condition(self, inner: bool) -> Formula | None:
        """FlinkCEP's getIgnoreCondition, or getInnerIgnoreCondition extended with `until`."""
        strategy = self.plan.inner if inner else self.plan.consuming
        ignore: Formula | None = None
        if strategy is Consuming.NEXT:
            ignore = f_not(self.plan.take)
        elif strategy is Consuming.ANY:
            ignore = TRUE
        if inner and ignore is not None and self.plan.until is not None:
            return ("and", f_not(self.plan.until), ignore)
        return ignore

    def take_condition(self) -> Formula:
        """The stage's condition, and not its until condition (extendWithUntilCondition)."""
        if self.plan.until is None:
            return self.plan.take
        return ("and", f_not(self.plan.until), self.plan.take)

    def not_conditions(self) -> list[tuple[Formula, str, int]]:
        """Not-followed-by stages between this stage and the previous positive one."""
        out: list[tuple[Formula, str, int]] = []
        i = self.current
        while i > 0 and (
            self.plans[i - 1].optional or self.plans[i - 1].consuming is Consuming.NOT_FOLLOW
        ):
            i -= 1
            if self.plans[i].consuming is Consuming.NOT_FOLLOW:
                out.append((self.plans[i].take, self.plans[i].name, self.plans[i].stage))
        return out

    def add_stop_states(self, state: BState) -> None:
        for condition, name, stage in self.not_conditions():
            state.add(Action.PROCEED, self.stop(condition, name, stage), condition)

    def add_stop_state_to_looping(self, state: BState) -> None:
        following = self.following
        if following is not None and following.consuming is Consuming.NOT_FOLLOW:
            stop = self.stop(following.take, following.name, following.stage)
            state.add(Action.PROCEED, stop, following.take)

    def copy_without_transitive_nots(self, sink: BState) -> BState:
        """FlinkCEP's copyWithoutTransitiveNots: after an optional stage takes an event, the
        negations before it no longer apply."""
        nots = self.not_conditions()
        if not nots or not self.plan.optional:
            return sink
        names = {f"{name}:stop" for _, name, _ in nots}
        clone = self.new(sink.name, sink.kind, sink.stage)
        for action, target, stage, condition in sink.edges:
            if action is Action.PROCEED:
                if target.kind is StateKind.STOP:
                    if target.name in names:
                        continue
                else:
                    target = self.copy_without_transitive_nots(target)
            elif target is sink:
                target = clone
            clone.edges.append((action, target, stage, condition))
        return clone

    def greedy_guard(self, state: BState, take: Formula) -> None:
        """FlinkCEP's updateWithGreedyCondition: what follows a greedy loop cannot take an
        event the loop could take."""
        state.edges = [(a, t, s, ("and", c, f_not(take))) for a, t, s, c in state.edges]

    # ------------------------------------------------------------------ construction
    def build(self) -> Automaton:
        sink = self.new("$end", StateKind.FINAL)
        while self.current > 0:
            plan = self.plan
            if plan.consuming is Consuming.NOT_FOLLOW:
                if self.windowed and sink.kind is StateKind.FINAL:
                    pending = self.new(f"{plan.name}:absent", StateKind.PENDING, plan.stage)
                    pending.add(
                        Action.PROCEED, self.stop(plan.take, plan.name, plan.stage), plan.take
                    )
                    pending.add(Action.IGNORE, pending, f_not(plan.take))
                    sink = pending
            elif plan.consuming is Consuming.NOT_NEXT:
                not_next = self.new(f"{plan.name}:not", StateKind.NORMAL, plan.stage)
                if sink.kind is StateKind.FINAL:
                    not_next.add(Action.IGNORE, sink, f_not(plan.take))
                else:
                    not_next.add(Action.PROCEED, sink, f_not(plan.take))
                not_next.add(Action.PROCEED, self.stop(plan.take, plan.name, plan.stage), plan.take)
                sink = not_next
            else:
                sink = self.convert(sink)
            self.following = plan
            self.current -= 1
        start = self.convert(sink)
        return Automaton(self.states, start)

    def convert(self, sink: BState) -> BState:
        """FlinkCEP's convertPattern."""
        plan = self.plan
        if plan.looping:
            looping = self.looping(self.copy_without_transitive_nots(sink))
            last = self.times(looping, sink, plan.times_from, plan.times_from)
        elif plan.times_to > 1:
            last = self.times(sink, sink, plan.times_from, plan.times_to)
        else:
            last = self.singleton(
                sink, sink, self.take_condition(), self.ignore_condition(False), plan.optional
            )
        self.add_stop_states(last)
        return last

    def singleton(
        self,
        sink: BState,
        proceed: BState | None,
        take: Formula,
        ignore: Formula | None,
        optional: bool,
    ) -> BState:
        """FlinkCEP's createSingletonState."""
        plan = self.plan
        state = self.new(plan.name, StateKind.NORMAL, plan.stage)
        target = self.copy_without_transitive_nots(sink)
        state.add(Action.TAKE, target, take, plan.stage)
        if optional and proceed is not None:
            if plan.greedy and plan.until is not None:
                state.add(Action.PROCEED, self.original.get(proceed.id, proceed), plan.until)
                state.add(Action.PROCEED, proceed, f_not(plan.until))
            else:
                state.add(Action.PROCEED, proceed, TRUE)
        if ignore is not None:
            if optional:
                ignore_state = self.new(plan.name, StateKind.NORMAL, plan.stage)
                ignore_state.add(Action.TAKE, target, take, plan.stage)
                ignore_state.add(Action.IGNORE, ignore_state, ignore)
                self.add_stop_states(ignore_state)
            else:
                ignore_state = state
            state.add(Action.IGNORE, ignore_state, ignore)
        return state

    def looping(self, sink: BState) -> BState:
        """FlinkCEP's createLooping."""
        plan = self.plan
        take = self.take_condition()
        ignore = self.ignore_condition(inner=True)
        state = self.new(plan.name, StateKind.NORMAL, plan.stage)
        if plan.greedy:
            if plan.until is not None:
                sink_copy = self.copy(sink)
                state.add(Action.PROCEED, sink_copy, plan.until)
                self.original[sink.id] = sink_copy
                state.add(Action.PROCEED, sink, f_not(plan.until))
            else:
                state.add(Action.PROCEED, sink, TRUE)
            self.greedy_guard(sink, plan.take)
        else:
            state.add(Action.PROCEED, sink, TRUE)
        state.add(Action.TAKE, state, take, plan.stage)
        self.add_stop_state_to_looping(state)
        if ignore is not None:
            ignore_state = self.new(plan.name, StateKind.NORMAL, plan.stage)
            ignore_state.add(Action.TAKE, state, take, plan.stage)
            ignore_state.add(Action.IGNORE, ignore_state, ignore)
            state.add(Action.IGNORE, ignore_state, ignore)
            self.add_stop_state_to_looping(ignore_state)
        return state

    def times(self, sink: BState, proceed: BState, times_from: int, times_to: int) -> BState:
        """FlinkCEP's createTimesState."""
        plan = self.plan
        take = self.take_condition()
        inner_ignore = self.ignore_condition(inner=True)
        if plan.greedy and times_from != times_to:
            if plan.until is not None:
                self.original[sink.id] = self.copy(sink)
            self.greedy_guard(sink, take)
        last = sink
        for _ in range(times_from, times_to):
            last = self.singleton(last, proceed, take, inner_ignore, True)
            self.add_stop_state_to_looping(last)
        for _ in range(times_from - 1):
            last = self.singleton(last, None, take, inner_ignore, False)
            self.add_stop_state_to_looping(last)
        return self.singleton(last, proceed, take, self.ignore_condition(False), plan.optional)


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
