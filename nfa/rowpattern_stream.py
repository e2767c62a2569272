"""The streaming row pattern engine: SQL (MATCH_RECOGNIZE) rules over unbounded input.

Same API and event-time rules as `nfa.reference.ReferenceEngine`: per stream a watermark
(largest time seen minus the stream's out-of-orderness); an event at or below its stream's
watermark is late and reported; events wait per key and are released in (time, arrival)
order once the engine watermark (the minimum over the streams that have seen events)
reaches them. Released rows are appended to each rule's per-key state (`KeyRows`) and the
key's matches are decided by `nfa.rowpattern_key.decide`; time passing (a watermark) can
decide windowed matches and absences. `finish()` ends the input, which decides the rest
(`$`, greedy loops still open). In processing-time mode rows are matched on arrival.

Outputs are `nfa.results.Match` values: `rule` indexes the programs given, `events` are the
match rows (`stage` = pattern variable id), `fields` the MEASURES (or the SELECT list).
The snapshot is JSON (rows hold only ints, floats, strings, bools and nulls): no code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import orjson

from nfa.batch import EventBatch, StringPool
from nfa.event_time import WatermarkApi
from nfa.expr import Type
from nfa.migrate import renumbering
from nfa.reference import NO_TIME, EngineConfig
from nfa.results import EngineCounters, EngineOutput, LateEvent, Match, MatchedEvent
from nfa.rowpattern_expr import Value
from nfa.rowpattern_key import Decided, KeyRows, Row, decide
from nfa.rowpattern_rule import SqlProgram, alert_fields

if TYPE_CHECKING:
    from nfa.migrate import CarryOver

#: A buffered event: (ts, arrival, stream, key, seq, row of its stream's fields).
_Event = tuple[int, int, int, int, int, Row]


class RowPatternEngine(WatermarkApi):
    """Keyed partitions, event time and the SQL rules' row pattern matching."""

    def __init__(
        self,
        programs: Sequence[SqlProgram],
        pool: StringPool,
        config: EngineConfig | None = None,
        emit_empty: bool = False,
    ):
        self.programs = list(programs)
        self.pool = pool
        self.config = config or EngineConfig()
        self.emit_empty = emit_empty  # empty matches have no event: only tests want them
        self.schema = self.programs[0].schema
        self.by_stream: dict[int, list[int]] = {}
        for index, program in enumerate(self.programs):
            self.by_stream.setdefault(program.stream, []).append(index)
        self.windowed = [i for i, p in enumerate(self.programs) if p.within_ms is not None]
        self.states: dict[tuple[int, int], KeyRows] = {}  # (rule, key)
        self.buffer: dict[int, list[_Event]] = {}
        self.stream_max: dict[int, int] = {}
        self.stream_watermark: dict[int, int] = {}
        self.watermark = NO_TIME
        self.arrivals = 0
        self.counters = EngineCounters()

    # ------------------------------------------------------------------ engine API
    def process(self, batch: EventBatch) -> EngineOutput:
        out = EngineOutput()
        for i in range(len(batch)):
            stream, ts = int(batch.stream[i]), int(batch.ts[i])
            self.counters.events_in += 1
            own = self.stream_watermark.get(stream, NO_TIME)
            if not self.config.processing_time and ts <= own:
                self.counters.events_late += 1
                out.late.append(LateEvent(stream, int(batch.key[i]), int(batch.seq[i]), ts, own))
                continue
            self.arrivals += 1
            if stream in self.by_stream:
                row = self._row(batch, i, stream)
                event = (ts, self.arrivals, stream, int(batch.key[i]), int(batch.seq[i]), row)
                if self.config.processing_time:
                    self._run([event], ts, False, out)
                    continue
                self.buffer.setdefault(event[3], []).append(event)
            if not self.config.processing_time:
                ooo = self.schema.streams[stream].out_of_order_ms
                self.stream_max[stream] = max(self.stream_max.get(stream, NO_TIME), ts)
                # never backwards: an idleness advance may have passed max - out-of-orderness
                self.stream_watermark[stream] = max(own, self.stream_max[stream] - ooo)
        if not self.config.processing_time:
            self._release(min(self.stream_watermark.values(), default=NO_TIME), out)
        return out

    def snapshot(self) -> bytes:
        """The state as JSON bytes (see `restore`)."""
        return orjson.dumps(
            {
                "states": [[r, k, _state_json(s)] for (r, k), s in sorted(self.states.items())],
                "buffer": [e for events in self.buffer.values() for e in events],
                "stream_max": sorted(self.stream_max.items()),
                "stream_watermark": sorted(self.stream_watermark.items()),
                "watermark": self.watermark,
                "arrivals": self.arrivals,
                "counters": asdict(self.counters),
            }
        )

    @classmethod
    def restore(
        cls,
        programs: Sequence[SqlProgram],
        pool: StringPool,
        data: bytes,
        config: EngineConfig | None = None,
        keep: CarryOver | None = None,
    ) -> RowPatternEngine:
        """With `keep` (see `nfa.migrate`), rule states are renumbered by it; the states of
        rules no new rule continues are dropped."""
        engine = cls(programs, pool, config)
        doc = orjson.loads(data)
        new_index = renumbering(keep if keep is not None else list(range(len(programs))))
        for rule, key, state in doc["states"]:
            if rule in new_index:
                engine.states[(new_index[rule], key)] = _state_from_json(state)
        for ts, arrival, stream, key, seq, row in doc["buffer"]:
            engine.buffer.setdefault(key, []).append((ts, arrival, stream, key, seq, tuple(row)))
        engine.stream_max = {int(s): int(t) for s, t in doc["stream_max"]}
        engine.stream_watermark = {int(s): int(t) for s, t in doc["stream_watermark"]}
        engine.watermark = int(doc["watermark"])
        engine.arrivals = int(doc["arrivals"])
        engine.counters = EngineCounters(**doc["counters"])
        return engine

    # ------------------------------------------------------------------ internals
    def _row(self, batch: EventBatch, i: int, stream: int) -> Row:
        """The event's stream fields as Python values (strings decoded, nulls None)."""
        values: list[Value] = []
        for c, column in enumerate(self.schema.columns):
            if column.stream != stream:
                continue
            if not batch.valid[c, i]:
                values.append(None)
            elif column.type.stored_as_float:
                values.append(float(batch.floats[column.slot, i]))
            elif column.type is Type.BOOL:
                values.append(bool(batch.ints[column.slot, i]))
            elif column.type is Type.STRING:
                values.append(self.pool.value(int(batch.ints[column.slot, i])))
            else:
                values.append(int(batch.ints[column.slot, i]))
        return tuple(values)

    def _release(self, watermark: int, out: EngineOutput, ended: bool = False) -> None:
        if watermark <= self.watermark and not ended:
            return
        self.watermark = max(self.watermark, watermark)
        ready: list[_Event] = []
        for key in list(self.buffer):
            pending = self.buffer[key]
            ready.extend(e for e in pending if e[0] <= watermark)
            rest = [e for e in pending if e[0] > watermark]
            if rest:
                self.buffer[key] = rest
            else:
                del self.buffer[key]
        ready.sort(key=lambda e: (e[0], e[1]))
        self._run(ready, watermark, ended, out)

    def _run(self, events: list[_Event], now: int, ended: bool, out: EngineOutput) -> None:
        """Append released rows to their states, then decide what can be decided."""
        touched: set[tuple[int, int]] = set()
        for _ts, _arrival, stream, key, seq, row in events:
            for rule in self.by_stream.get(stream, ()):
                self.states.setdefault((rule, key), KeyRows()).append(row, seq, _ts)
                touched.add((rule, key))
        if ended:
            touched = set(self.states)
        else:
            windowed = set(self.windowed)
            touched |= {k for k in self.states if k[0] in windowed}
        for rule, key in sorted(touched):
            state = self.states[(rule, key)]
            program = self.programs[rule]
            for decided in decide(program, state, now, ended, self.emit_empty):
                out.matches.append(self._match(rule, key, program, decided))
                self.counters.matches += 1
            if ended or not (state.rows or program.positional):
                del self.states[(rule, key)]  # kept when MATCH_NUMBER() or `^` must count on

    def _match(self, rule: int, key: int, program: SqlProgram, decided: Decided) -> Match:
        events = tuple(MatchedEvent(label, seq, ts) for label, seq, ts in decided.events)
        fields = alert_fields(program, decided.key_value, decided.measures, decided.row)
        return Match(rule, key, events, decided.time, False, fields)


def _state_json(state: KeyRows) -> list[object]:
    return [state.base, state.pos, state.number, state.rows, state.seqs, state.times]


def _state_from_json(doc: list[Any]) -> KeyRows:
    base, pos, number, rows, seqs, times = doc
    return KeyRows(
        [tuple(r) for r in rows], list(seqs), list(times), int(base), int(pos), int(number)
    )
