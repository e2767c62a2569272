"""The reference engine: SEMANTICS.md followed literally, in plain Python. The test oracle.

It runs the same programs as the product engine, one Python object per event and per
partial match, with FlinkCEP's NFA algorithm (`NFA.java`: computeNextStates,
createDecisionGraph, advanceTime, processMatchesAccordingToSkipStrategy) transcribed as
directly as possible. Slow and obviously correct is the point; never use it in production.

Event time: per stream a watermark (largest time seen minus the stream's out-of-orderness);
an event at or below its stream's watermark is late. Events wait per key and are released
in (time, arrival) order once the engine watermark (the minimum over the streams that have
seen events) reaches them. Before each released event the key's time advances to the
event's time (windows close, absences complete); after a release, to the watermark.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nfa.batch import EventBatch, StringPool
from nfa.interpret import Evaluator, Event, Value
from nfa.migrate import renumbering
from nfa.program import F_AND, F_NOT, F_OR, F_TRUE, Action, Program, SkipKind, StateKind
from nfa.reference_bounds import enforce_bounds
from nfa.results import EngineCounters, EngineOutput, LateEvent, Match, MatchedEvent

if TYPE_CHECKING:
    from nfa.migrate import CarryOver

NO_TIME = -(2**62)
END_OF_TIME = 2**62


@dataclass(frozen=True)
class EngineConfig:
    """Bounds and modes shared by both engines."""

    max_runs_per_key: int = 10_000  # per rule; beyond it the oldest partial match is dropped
    processing_time: bool = False  # match on arrival; no buffering, no lateness
    max_keys: int = 0  # keys with partial matches; 0: unbounded (nfa.reference_bounds)
    max_buffered_events: int = 0  # events waiting for the watermark; 0: unbounded
    max_runs_per_rule: int = 0  # over all keys; 0: unbounded (nfa.reference_bounds)


@dataclass
class Run:
    """A partial match (FlinkCEP's ComputationState); `start is None` only for the start run."""

    state: int
    taken: tuple[tuple[int, Event], ...]  # (stage, event) in the order taken
    start: Event | None

    def priority(self) -> tuple[int, int]:
        if self.start is None:
            return (END_OF_TIME, END_OF_TIME)
        return (self.start.ts, self.start.order)


@dataclass
class RuleState:
    runs: list[Run] = field(default_factory=list)
    completed: list[Run] = field(default_factory=list)  # held back by a skip strategy


class ReferenceNFA:
    """One program's matching for one key at a time."""

    def __init__(self, program: Program, pool: StringPool, config: EngineConfig):
        self.program = program
        self.evaluator = Evaluator(program, pool)
        self.config = config

    def stages(self, run: Run) -> list[list[Event]]:
        out: list[list[Event]] = [[] for _ in self.program.stage_names]
        for stage, event in run.taken:
            out[stage].append(event)
        return out

    def holds(self, edge: int, event: Event, stages: Sequence[Sequence[Event]]) -> bool:
        stack: list[bool] = []
        for code in self.program.formula(edge):
            if code >= 0:
                stack.append(self.evaluator.truth(self.program.atoms[code], event, stages))
            elif code == F_TRUE:
                stack.append(True)
            elif code == F_NOT:
                stack.append(not stack.pop())
            elif code in (F_AND, F_OR):
                b, a = stack.pop(), stack.pop()
                stack.append((a and b) if code == F_AND else (a or b))
        return stack.pop()

    def decision_graph(self, run: Run, event: Event, stages: list[list[Event]]) -> list[int]:
        p = self.program
        edges: list[int] = []
        todo = [run.state]
        while todo:
            state = todo.pop()
            for edge in p.edges_of(state):
                if self.holds(edge, event, stages):
                    if p.edge_action[edge] == Action.PROCEED:
                        todo.append(int(p.edge_target[edge]))
                    else:
                        edges.append(edge)
        return edges

    def final_after_proceed(
        self, state: int, event: Event, stages: list[list[Event]]
    ) -> int | None:
        p = self.program
        todo = [state]
        while todo:
            current = todo.pop()
            for edge in p.edges_of(current):
                if p.edge_action[edge] == Action.PROCEED and self.holds(edge, event, stages):
                    target = int(p.edge_target[edge])
                    if p.state_kind[target] == StateKind.FINAL:
                        return target
                    todo.append(target)
        return None

    def next_runs(self, run: Run, event: Event) -> list[Run]:
        p = self.program
        stages = self.stages(run)
        out: list[Run] = []
        for edge in self.decision_graph(run, event, stages):
            target = int(p.edge_target[edge])
            if p.edge_action[edge] == Action.IGNORE:
                if run.start is not None:
                    out.append(Run(target, run.taken, run.start))
                continue
            taken = (*run.taken, (int(p.edge_stage[edge]), event))
            start = run.start if run.start is not None else event
            out.append(Run(target, taken, start))
            final = self.final_after_proceed(target, event, stages)
            if final is not None:
                out.append(Run(final, taken, start))
        return out

    def process(
        self,
        state: RuleState,
        event: Event,
        key: int,
        rule: int,
        out: EngineOutput,
        counters: EngineCounters,
    ) -> None:
        p = self.program
        self.advance(state, event.ts, key, rule, out, counters)
        new_runs: list[Run] = []
        potential: list[Run] = []
        for run in [*state.runs, Run(p.start_state, (), None)]:
            retain: list[Run] = []
            discard = False
            for new in self.next_runs(run, event):
                kind = p.state_kind[new.state]
                if kind == StateKind.FINAL:
                    potential.append(new)
                elif kind == StateKind.STOP:
                    discard = True
                else:
                    retain.append(new)
            if not discard:
                new_runs.extend(retain)
        new_runs.sort(key=Run.priority)
        if len(new_runs) > self.config.max_runs_per_key:
            dropped = len(new_runs) - self.config.max_runs_per_key
            counters.partial_matches_dropped += dropped
            new_runs = new_runs[dropped:]
        potential.sort(key=Run.priority)
        if p.skip == SkipKind.NO_SKIP:
            for match in potential:
                out.matches.append(self.materialise(match, key, rule))
        else:
            self.emit_by_skip_strategy(state, potential, new_runs, key, rule, out)
        state.runs = new_runs

    def advance(
        self,
        state: RuleState,
        now: int,
        key: int,
        rule: int,
        out: EngineOutput,
        counters: EngineCounters,
    ) -> None:
        """FlinkCEP's advanceTime: close windows, complete absences, report timeouts."""
        p = self.program
        if p.window_ms <= 0:
            return
        kept: list[Run] = []
        potential: list[Run] = []
        for run in state.runs:
            assert run.start is not None
            if now - run.start.ts >= p.window_ms:
                if p.state_kind[run.state] == StateKind.PENDING:
                    potential.append(run)
                    continue
                if p.on_timeout is not None:
                    out.timeouts.append(self.materialise(run, key, rule, timed_out=True))
            else:
                kept.append(run)
        state.runs = kept
        if potential or state.completed:
            self.emit_by_skip_strategy(state, potential, kept, key, rule, out)

    def emit_by_skip_strategy(
        self,
        state: RuleState,
        potential: list[Run],
        partial: list[Run],
        key: int,
        rule: int,
        out: EngineOutput,
    ) -> None:
        state.completed.extend(potential)
        state.completed.sort(key=Run.priority)
        while state.completed:
            earliest = state.completed[0]
            if partial and partial[0].priority() < earliest.priority():
                break
            state.completed.pop(0)
            self.prune(partial, earliest)
            self.prune(state.completed, earliest)
            out.matches.append(self.materialise(earliest, key, rule))

    def prune(self, runs: list[Run], match: Run) -> None:
        p = self.program
        orders = [event.order for _, event in match.taken]
        pruning: int | None = None
        strict = False
        if p.skip == SkipKind.TO_NEXT:
            pruning = min(orders)
        elif p.skip == SkipKind.PAST_LAST:
            pruning = max(orders)
        elif p.skip in (SkipKind.TO_FIRST, SkipKind.TO_LAST):
            named = [e.order for s, e in match.taken if s == p.skip_stage]
            if named:
                pruning = named[0] if p.skip == SkipKind.TO_FIRST else named[-1]
            strict = True
        if pruning is None:
            return
        runs[:] = [
            r
            for r in runs
            if r.start is None
            or not (r.start.order < pruning or (not strict and r.start.order == pruning))
        ]

    def materialise(self, run: Run, key: int, rule: int, timed_out: bool = False) -> Match:
        """The match as a value; its time is its last event's, or its window's end."""
        events = tuple(MatchedEvent(stage, e.seq, e.ts) for stage, e in run.taken)
        assert run.start is not None
        window_end = run.start.ts + self.program.window_ms
        pending = self.program.state_kind[run.state] == StateKind.PENDING
        time = window_end if (timed_out or pending) else events[-1].ts
        spec = self.program.on_timeout if timed_out else self.program.emit
        fields = self.evaluator.output(spec, self.stages(run))
        return Match(rule, key, events, time, timed_out, fields)


class ReferenceEngine:
    """Keyed partitions, event time and the NFAs of several rules, in plain Python."""

    def __init__(
        self, programs: Sequence[Program], pool: StringPool, config: EngineConfig | None = None
    ):
        self.programs = list(programs)
        self.config = config or EngineConfig()
        self.schema = self.programs[0].schema
        self.nfas = [ReferenceNFA(p, pool, self.config) for p in self.programs]
        self.rule_streams = [set(p.stage_streams) for p in self.programs]
        self.states: dict[tuple[int, int], RuleState] = {}
        self.buffer: dict[int, list[Event]] = {}
        self.stream_max: dict[int, int] = {}
        self.stream_watermark: dict[int, int] = {}
        self.watermark = NO_TIME
        self.order = 0
        self.arrivals = 0
        self.last_active: dict[int, int] = {}  # key -> order of its last released event
        self.counters = EngineCounters()

    def process(self, batch: EventBatch) -> EngineOutput:
        out = EngineOutput()
        for i in range(len(batch)):
            event = self._event(batch, i)
            self.counters.events_in += 1
            if self.config.processing_time:
                self._run_event(event, out)
                continue
            own = self.stream_watermark.get(event.stream, NO_TIME)
            if event.ts <= own:
                self.counters.events_late += 1
                out.late.append(LateEvent(event.stream, event.key, event.seq, event.ts, own))
                continue
            self.buffer.setdefault(event.key, []).append(event)
            ooo = self.schema.streams[event.stream].out_of_order_ms
            self.stream_max[event.stream] = max(
                self.stream_max.get(event.stream, NO_TIME), event.ts
            )
            # never backwards: an idleness advance may have passed max - out-of-orderness
            self.stream_watermark[event.stream] = max(own, self.stream_max[event.stream] - ooo)
        if not self.config.processing_time:
            self._release(min(self.stream_watermark.values(), default=NO_TIME), out)
        enforce_bounds(self)
        return out

    def advance_watermark(self, stream: int, watermark: int) -> EngineOutput:
        """Move one stream's watermark forward (idleness); never backwards."""
        out = EngineOutput()
        if watermark > self.stream_watermark.get(stream, NO_TIME):
            self.stream_watermark[stream] = watermark
        self._release(min(self.stream_watermark.values(), default=NO_TIME), out)
        enforce_bounds(self)
        return out

    def finish(self) -> EngineOutput:
        """End of bounded input: release everything and fire every pending timer."""
        out = EngineOutput()
        for stream in range(len(self.schema.streams)):
            self.stream_watermark[stream] = END_OF_TIME
        self._release(END_OF_TIME, out)
        for (key, rule), state in sorted(self.states.items()):
            nfa = self.nfas[rule]
            if state.completed:
                nfa.emit_by_skip_strategy(state, [], [], key, rule, out)
        return out

    _SNAPSHOT_FIELDS: tuple[str, ...] = ("states", "buffer", "stream_max", "stream_watermark")
    _SNAPSHOT_FIELDS += ("watermark", "order", "arrivals", "last_active", "counters")

    def snapshot(self) -> bytes:
        """The state as bytes. Pickle: this engine is a test oracle and reads only its own
        snapshots; the product engine's format (`nfa.engine_snapshot`) has no code in it."""
        return pickle.dumps({name: getattr(self, name) for name in self._SNAPSHOT_FIELDS})

    @classmethod
    def restore(
        cls,
        programs: Sequence[Program],
        pool: StringPool,
        data: bytes,
        config: EngineConfig | None = None,
        keep: CarryOver | None = None,
    ) -> ReferenceEngine:
        """With `keep` (see `nfa.migrate`), rule states are renumbered by it; the states of
        rules no new rule continues are dropped."""
        engine = cls(programs, pool, config)
        for name, value in pickle.loads(data).items():  # noqa: S301 - own snapshots only
            setattr(engine, name, value)
        if keep is not None:
            new_index = renumbering(keep)
            engine.states = {
                (key, new_index[rule]): state
                for (key, rule), state in engine.states.items()
                if rule in new_index
            }
        return engine

    def _event(self, batch: EventBatch, i: int) -> Event:
        values: list[Value] = []
        for c, column in enumerate(self.schema.columns):
            if not batch.valid[c, i]:
                values.append(None)
            elif column.type.stored_as_float:
                values.append(float(batch.floats[column.slot, i]))
            elif column.type.value == "bool":
                values.append(bool(batch.ints[column.slot, i]))
            else:
                values.append(int(batch.ints[column.slot, i]))
        self.arrivals += 1
        return Event(
            int(batch.seq[i]),
            self.arrivals,
            int(batch.key[i]),
            int(batch.ts[i]),
            int(batch.stream[i]),
            tuple(values),
        )

    def _release(self, watermark: int, out: EngineOutput) -> None:
        if watermark <= self.watermark and watermark != END_OF_TIME:
            return
        self.watermark = max(self.watermark, watermark)
        ready: list[Event] = []
        for key in list(self.buffer):
            pending = self.buffer[key]
            ready.extend(e for e in pending if e.ts <= watermark)
            rest = [e for e in pending if e.ts > watermark]
            if rest:
                self.buffer[key] = rest
            else:
                del self.buffer[key]
        ready.sort(key=lambda e: (e.ts, e.order))
        for event in ready:
            self._run_event(event, out)
        for (key, rule), state in sorted(self.states.items()):
            self.nfas[rule].advance(state, watermark, key, rule, out, self.counters)

    def _run_event(self, event: Event, out: EngineOutput) -> None:
        self.order += 1
        self.last_active[event.key] = self.order
        event = Event(event.seq, self.order, event.key, event.ts, event.stream, event.values)
        for rule, nfa in enumerate(self.nfas):
            if event.stream not in self.rule_streams[rule]:
                continue
            state = self.states.setdefault((event.key, rule), RuleState())
            nfa.process(state, event, event.key, rule, out, self.counters)
            if not state.runs and not state.completed:
                del self.states[(event.key, rule)]
