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

from dataclasses import dataclass, field

from cep.plans import TRUE, Consuming, Formula, GroupPlan, Plan, StagePlan, f_not
from nfa.program import Action, StateKind

__all__ = ["Automaton", "AutomatonBuilder", "BState", "Consuming", "GroupPlan", "Plan", "StagePlan"]


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
    def __init__(self, plans: list[Plan], windowed: bool):
        self.plans: list[Plan] = plans
        self.windowed = windowed
        self.states: list[BState] = []
        self.current = len(plans) - 1
        self.following: Plan | None = None
        self.stop_states: dict[str, BState] = {}
        self.original: dict[int, BState] = {}  # FlinkCEP's originalStateMap (greedy + until)
        self.group: GroupPlan | None = None  # the group whose inner sequence is being built
        self.first_of_loop: dict[int, bool] = {}  # per group: building its first iteration

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
    def plan(self) -> Plan:
        return self.plans[self.current]

    def head_of_group(self) -> bool:
        return self.group is not None and self.current == 0

    def group_first_of_loop(self) -> bool:
        return self.group is None or self.first_of_loop.get(id(self.group), True)

    def set_first_of_loop(self, value: bool) -> None:
        if isinstance(self.plan, GroupPlan):
            self.first_of_loop[id(self.plan)] = value

    def pattern_optional(self) -> bool:
        """FlinkCEP's isPatternOptional: a group's head is optional when the group is."""
        if self.head_of_group():
            assert self.group is not None
            return self.group_first_of_loop() and self.group.optional
        return self.plan.optional

    def ignore_condition(self, inner: bool) -> Formula | None:
        """FlinkCEP's getIgnoreCondition, or getInnerIgnoreCondition extended with `until`."""
        strategy = self.plan.inner if inner else self.plan.consuming
        if self.head_of_group():
            assert self.group is not None
            strategy = (
                self.group.consuming
                if (not inner and self.group_first_of_loop())
                else self.group.inner
            )
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
        sink = self.middle(self.new("$end", StateKind.FINAL))
        start = self.convert(sink)
        return Automaton(self.states, start)

    def middle(self, sink: BState) -> BState:
        """FlinkCEP's createMiddleStates: every element but the first, backwards."""
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
        return sink

    def convert(self, sink: BState) -> BState:
        """FlinkCEP's convertPattern."""
        plan = self.plan
        if plan.looping:
            self.set_first_of_loop(False)
            looping = self.looping(self.copy_without_transitive_nots(sink))
            self.set_first_of_loop(True)
            last = self.times(looping, sink, plan.times_from, plan.times_from)
        elif plan.times_to > 1:
            last = self.times(sink, sink, plan.times_from, plan.times_to)
        else:
            last = self.singleton(
                sink,
                sink,
                self.take_condition(),
                self.ignore_condition(False),
                self.pattern_optional(),
            )
        self.add_stop_states(last)
        return last

    def group_entries(self, group: GroupPlan, sink: BState) -> list[BState]:
        """Build each alternative of `group` towards `sink`; return their first states."""
        saved = (self.plans, self.current, self.following, self.group)
        entries = []
        for alternative in group.alternatives:
            self.plans, self.current, self.group = list(alternative), len(alternative) - 1, group
            self.following = saved[2]
            entries.append(self.convert(self.middle(sink)))
        self.plans, self.current, self.following, self.group = saved
        return entries

    def branch(self, group: GroupPlan, entries: list[BState]) -> BState:
        if len(entries) == 1:
            return entries[0]
        state = self.new(f"{group.name}:or", StateKind.NORMAL)
        for entry in entries:
            state.add(Action.PROCEED, entry, TRUE)
        return state

    def group_state(self, sink: BState, proceed: BState | None, optional: bool) -> BState:
        """FlinkCEP's createGroupPatternState, with alternation."""
        group = self.plan
        assert isinstance(group, GroupPlan)
        entry = self.branch(group, self.group_entries(group, sink))
        if optional and proceed is not None:
            entry.add(Action.PROCEED, proceed, TRUE)
        return entry

    def looping_group(self, sink: BState) -> BState:
        """FlinkCEP's createLoopingGroupPatternState: the group's end leads back to its start."""
        group = self.plan
        assert isinstance(group, GroupPlan)
        again = self.new(f"{group.name}:again", StateKind.NORMAL)
        entry = self.branch(group, self.group_entries(group, again))
        entry.add(Action.PROCEED, sink, TRUE)
        again.add(Action.PROCEED, entry, TRUE)
        return entry

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
        if isinstance(plan, GroupPlan):
            return self.group_state(sink, proceed, optional)
        state = self.new(plan.name, StateKind.NORMAL, plan.stage)
        target = self.copy_without_transitive_nots(sink)
        state.add(Action.TAKE, target, take, plan.stage)
        if optional and proceed is not None and not self.head_of_group():
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
        if isinstance(plan, GroupPlan):
            return self.looping_group(sink)
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
        self.set_first_of_loop(False)
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
        self.set_first_of_loop(True)
        return self.singleton(
            last, proceed, take, self.ignore_condition(False), self.pattern_optional()
        )
