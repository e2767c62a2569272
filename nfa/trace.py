"""A why-(not)-fired trace: the reference engine's walk for one rule and one key.

Analysts ask "why did card X not alert?". The answer is the NFA's walk over that key's
events: which partial matches existed when an event was released, which edges were tried,
which condition failed on which field values, and what became of each partial match:
extended, completed, dropped (no edge held), discarded by a negation's stop state, pruned
by the skip strategy, timed out by the window; and which events came late.

The trace runs the reference engine's own code: `TracingNFA` subclasses `ReferenceNFA` and
its overrides call the originals and only observe, so the trace shows the oracle's
semantics rather than a re-implementation of them. Only the edge walk is repeated
(`_edges`, mirroring `decision_graph`) to report the edges that failed, which the engine
does not keep. Entries are plain values (`nfa.trace_entries`); `service.trace` renders
them as text.
"""

from __future__ import annotations

from collections.abc import Sequence

from nfa import expr as ir
from nfa.batch import EventBatch, StringPool
from nfa.explain import expression
from nfa.interpret import Event, Value
from nfa.program import F_AND, F_NOT, F_OR, F_TRUE, Action, Program, StateKind
from nfa.reference import (
    END_OF_TIME,
    EngineConfig,
    ReferenceEngine,
    ReferenceNFA,
    RuleState,
    Run,
)
from nfa.results import EngineCounters, EngineOutput, Match
from nfa.trace_entries import (
    Capped,
    Condition,
    EdgeTrial,
    Emitted,
    Ending,
    Entry,
    Expired,
    Finished,
    HeldBack,
    Late,
    Pruned,
    Released,
    RunView,
    Step,
    Watermark,
    duration,
    iso,
)

Stages = list[list[Event]]


class TracingNFA(ReferenceNFA):
    """`ReferenceNFA` that records its walk for one key into `entries`."""

    def __init__(
        self,
        program: Program,
        pool: StringPool,
        config: EngineConfig,
        key: int,
        entries: list[Entry],
    ) -> None:
        super().__init__(program, pool, config)
        self.key = key
        self.entries = entries
        self.active = False

    # ------------------------------------------------------------------ observed calls
    def process(
        self,
        state: RuleState,
        event: Event,
        key: int,
        rule: int,
        out: EngineOutput,
        counters: EngineCounters,
    ) -> None:
        if key != self.key:
            super().process(state, event, key, rule, out, counters)
            return
        self.entries.append(Released(event.seq, event.ts, tuple(map(self.view, state.runs))))
        held = {id(r) for r in state.completed}
        dropped = counters.partial_matches_dropped
        self.active = True
        try:
            super().process(state, event, key, rule, out, counters)
        finally:
            self.active = False
        if counters.partial_matches_dropped > dropped:
            extra = counters.partial_matches_dropped - dropped
            self.entries.append(Capped(extra, self.config.max_runs_per_key))
        for run in state.completed:
            if id(run) not in held:
                waiting = self.view(state.runs[0]) if state.runs else None
                self.entries.append(HeldBack(self.view(run), waiting))

    def advance(
        self,
        state: RuleState,
        now: int,
        key: int,
        rule: int,
        out: EngineOutput,
        counters: EngineCounters,
    ) -> None:
        window = self.program.window_ms
        if key != self.key or window <= 0:
            super().advance(state, now, key, rule, out, counters)
            return
        expired = [r for r in state.runs if r.start is not None and now - r.start.ts >= window]
        if expired and not self.active and now < END_OF_TIME:  # from a watermark, not an event
            self.entries.append(Watermark(now))
        for run in expired:
            assert run.start is not None
            absence = self.program.state_kind[run.state] == StateKind.PENDING
            self.entries.append(Expired(now, self.view(run), run.start.ts, window, bool(absence)))
        previous, self.active = self.active, True
        try:
            super().advance(state, now, key, rule, out, counters)
        finally:
            self.active = previous

    def emit_by_skip_strategy(
        self,
        state: RuleState,
        potential: list[Run],
        partial: list[Run],
        key: int,
        rule: int,
        out: EngineOutput,
    ) -> None:
        previous, self.active = self.active, self.active or key == self.key
        try:
            super().emit_by_skip_strategy(state, potential, partial, key, rule, out)
        finally:
            self.active = previous

    def prune(self, runs: list[Run], match: Run) -> None:
        before = list(runs)
        super().prune(runs, match)
        if self.active:
            kept = {id(r) for r in runs}
            skip = self.program.skip.name.lower()
            for run in before:
                if id(run) not in kept:
                    final = self.program.state_kind[run.state] == StateKind.FINAL
                    self.entries.append(Pruned(self.view(run), self.view(match), skip, bool(final)))

    def materialise(self, run: Run, key: int, rule: int, timed_out: bool = False) -> Match:
        match = super().materialise(run, key, rule, timed_out)
        if key == self.key:
            self.entries.append(Emitted(self.view(run), match.time, timed_out, match.fields))
        return match

    def next_runs(self, run: Run, event: Event) -> list[Run]:
        result = super().next_runs(run, event)
        if self.active:
            self.entries.append(self._step(run, event, result))
        return result

    # ------------------------------------------------------------------ explanations
    def view(self, run: Run) -> RunView:
        names = self.program.stage_names
        taken = tuple((names[stage], event.seq) for stage, event in run.taken)
        return RunView(self.program.state_names[run.state], taken)

    def _step(self, run: Run, event: Event, result: list[Run]) -> Step:
        p = self.program
        edges = self._edges(run, event, self.stages(run))
        kinds = [int(p.state_kind[r.state]) for r in result]
        stops = [r for r, k in zip(result, kinds, strict=True) if k == StateKind.STOP]
        return Step(
            event.seq,
            self.view(run) if run.start is not None else None,
            edges,
            tuple(
                self.view(r)
                for r, k in zip(result, kinds, strict=True)
                if k != StateKind.STOP and k != StateKind.FINAL
            ),
            tuple(self.view(r) for r, k in zip(result, kinds, strict=True) if k == StateKind.FINAL),
            p.state_names[stops[0].state] if stops else None,
            not any(e.action == "ignore" for e in edges),
        )

    def _edges(self, run: Run, event: Event, stages: Stages) -> tuple[EdgeTrial, ...]:
        """Every edge `decision_graph` tries, in its order, with the deciding conditions."""
        p = self.program
        trials: list[EdgeTrial] = []
        todo = [run.state]
        while todo:
            state = todo.pop()
            for edge in p.edges_of(state):
                held, because = self._formula(edge, event, stages)
                action = Action(int(p.edge_action[edge]))
                target = int(p.edge_target[edge])
                stage = p.stage_names[int(p.edge_stage[edge])] if action == Action.TAKE else None
                trials.append(
                    EdgeTrial(
                        p.state_names[state],
                        action.name.lower(),
                        stage,
                        p.state_names[target],
                        StateKind(int(p.state_kind[target])).name.lower(),
                        self._formula_text(edge),
                        held,
                        tuple(because),
                    )
                )
                if held and action == Action.PROCEED:
                    todo.append(target)
        return tuple(trials)

    def _formula_text(self, edge: int) -> str:
        stack: list[str] = []
        for code in self.program.formula(edge):
            if code >= 0:
                stack.append(expression(self.program, self.program.atoms[code]))
            elif code == F_TRUE:
                stack.append("true")
            elif code == F_NOT:
                stack.append(f"not {stack.pop()}")
            elif code in (F_AND, F_OR):
                b, a = stack.pop(), stack.pop()
                stack.append(f"({a} {'and' if code == F_AND else 'or'} {b})")
        return stack.pop()

    def _formula(self, edge: int, event: Event, stages: Stages) -> tuple[bool, list[Condition]]:
        """The edge formula's truth and the leaf conditions that decided it."""
        stack: list[tuple[bool, list[Condition]]] = []
        for code in self.program.formula(edge):
            if code >= 0:
                atom = self.program.atoms[code]
                stack.append(
                    (self.evaluator.truth(atom, event, stages), self._leaves(atom, event, stages))
                )
            elif code == F_TRUE:
                stack.append((True, []))
            elif code == F_NOT:
                value, why = stack.pop()
                stack.append((not value, why))
            elif code in (F_AND, F_OR):
                (vb, wb), (va, wa) = stack.pop(), stack.pop()
                want = code == F_OR  # the value that decides an `or` (true) or an `and` (false)
                deciding = [w for v, w in ((va, wa), (vb, wb)) if v == want]
                value = (va or vb) if code == F_OR else (va and vb)
                stack.append((value, [c for w in (deciding or [wa, wb]) for c in w]))
        return stack.pop()

    def _leaves(self, node: ir.Expr, event: Event, stages: Stages) -> list[Condition]:
        """The leaf conditions under `and`/`or` that decide `node`'s value."""
        value = self.evaluator.evaluate(node, event, stages)
        if isinstance(node, ir.Op) and node.op in ("and", "or"):
            # An `and` is decided by its false (else null) operands, an `or` by its true ones.
            pairs = [(a, self.evaluator.evaluate(a, event, stages)) for a in node.args]
            deciding: Value = node.op == "or"
            if value is not deciding:  # every operand counted (or the nulls did it)
                deciding = None if value is None else value
            chosen = [a for a, v in pairs if v is deciding] or list(node.args)
            return [c for a in chosen for c in self._leaves(a, event, stages)]
        return [
            Condition(
                expression(self.program, node), _truth(value), self._reads(node, event, stages)
            )
        ]

    def _reads(self, node: ir.Expr, event: Event, stages: Stages) -> tuple[tuple[str, str], ...]:
        """The values a condition read: fields, event time, aggregates, computed operands."""
        out: dict[str, str] = {}
        if isinstance(node, ir.Op) and node.op == "stream_is":
            return (("stream", self.program.schema.streams[event.stream].name),)
        operands = node.args if isinstance(node, ir.Op) else ()
        for sub in [*ir.walk(node), *operands]:
            if isinstance(sub, ir.Const) or sub is node:
                continue
            if isinstance(sub, ir.Op) and sub not in operands:
                continue
            text = expression(self.program, sub)
            out.setdefault(text, self.format(self.evaluator.evaluate(sub, event, stages), sub.type))
        return tuple(out.items())

    def format(self, value: Value, type_: ir.Type) -> str:
        """A value as an analyst reads it (strings decoded, times as ISO-8601)."""
        if value is None:
            return "null"
        if type_ is ir.Type.STRING:
            return repr(self.evaluator.pool.value(int(value)))
        if type_ is ir.Type.BOOL:
            return "true" if value else "false"
        if type_ is ir.Type.TIMESTAMP:
            return iso(int(value))
        if type_ is ir.Type.DURATION:
            return duration(int(value))
        return repr(value)


def _truth(value: Value) -> str:
    return "null" if value is None else "true" if value is True else "false"


class TraceEngine:
    """A reference engine over one program whose NFA traces one key (a key id of `keys`).

    Feed it every event (all streams: the watermark depends on them all); late events of
    the key are recorded where they arrived, before the releases of the same batch.
    """

    def __init__(
        self, program: Program, pool: StringPool, key: int, config: EngineConfig | None = None
    ) -> None:
        self.program = program
        self.key = key
        self.engine = ReferenceEngine([program], pool, config)
        self.entries: list[Entry] = []
        self.nfa = TracingNFA(program, pool, self.engine.config, key, self.entries)
        self.engine.nfas[0] = self.nfa
        self.streams = set(program.stage_streams)

    def process(self, batch: EventBatch) -> EngineOutput:
        mark = len(self.entries)
        out = self.engine.process(batch)
        self._late(out, mark)
        return out

    def advance_watermark(self, stream: int, watermark: int) -> EngineOutput:
        return self.engine.advance_watermark(stream, watermark)

    def finish(self) -> EngineOutput:
        self.entries.append(Ending())
        out = self.engine.finish()
        state = self.engine.states.get((self.key, 0))
        runs = tuple(self.nfa.view(r) for r in state.runs) if state else ()
        self.entries.append(Finished(runs))
        return out

    def _late(self, out: EngineOutput, mark: int) -> None:
        streams = self.program.schema.streams
        late: Sequence[Entry] = [
            Late(e.seq, e.ts, streams[e.stream].name, e.watermark)
            for e in out.late
            if e.key == self.key and e.stream in self.streams
        ]
        self.entries[mark:mark] = late
