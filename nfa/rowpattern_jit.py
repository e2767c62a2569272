"""SQL rules on Numba kernels: the streaming row pattern engine over columnar arrays.

`JitRowPatternEngine` has the API, event-time rules and outputs of
`nfa.rowpattern_stream.RowPatternEngine` (the pure-Python engine, kept as the oracle and
for the rules these kernels do not run): per-stream watermarks and lateness on whole
batches (`nfa.event_time`), a buffer of waiting events released in (time, arrival) order,
and per rule one generated module — `nfa.rowpattern_kernel`'s search and decision loop
plus the rule's `condition` and `measures` generated from its checked expression trees
(`nfa.rowpattern_codegen`; no rule text reaches the source: names are generated, strings
are pool ids) — that appends released rows to each key and decides its matches. Python
builds only the outputs (matches are rare).

`kernel_supported` says which SQL programs run here: ONE ROW and ALL ROWS PER MATCH (but
not ALL ROWS with `{- -}`), NOT FOLLOWED BY, and the expressions the generator handles
(numbers, booleans, string equality, navigation, aggregates over numbers; see
`nfa.rowpattern_codegen`).

Snapshots: a header, JSON scalars (rule identities, watermarks, counters) and an `.npz`
archive of the waiting events and each rule's key table and retained rows, no pickles
(`nfa.rowpattern_jit_snapshot`).
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from nfa import rowpattern_kernel as rk
from nfa import rowpattern_search
from nfa.batch import EventBatch, StringPool
from nfa.codegen import load_module
from nfa.event_time import (
    WatermarkApi,
    buffer_on_time,
    kernel_columns,
    own_buffer,
    split_late,
    take_released,
)
from nfa.expr import Type
from nfa.kernel_cache import drop_when_changed
from nfa.reference import NO_TIME, EngineConfig
from nfa.results import EngineCounters, EngineOutput, Match, MatchedEvent
from nfa.rowpattern import Op
from nfa.rowpattern_codegen import Unsupported, kernel_functions
from nfa.rowpattern_expr import RType, Value
from nfa.rowpattern_jit_snapshot import read_snapshot, write_snapshot
from nfa.rowpattern_rule import SqlProgram, alert_fields
from nfa.rowpattern_run import Skip

if TYPE_CHECKING:
    from nfa.migrate import CarryOver

I64 = npt.NDArray[np.int64]
State = tuple[np.ndarray[Any, Any], ...]

_SKIP = {
    Skip.PAST_LAST_ROW: rk.SKIP_PAST_LAST,
    Skip.TO_NEXT_ROW: rk.SKIP_NEXT_ROW,
    Skip.TO_FIRST: rk.SKIP_TO_FIRST,
    Skip.TO_LAST: rk.SKIP_TO_LAST,
}
# A rule's module is the search template plus its generated functions; it links the static
# kernel's helpers, so its name (a digest of its source) must change when they do.
_STATIC_DIGEST = hashlib.sha256(inspect.getsource(rk).encode()).hexdigest()[:16]
_TEMPLATE = f"{inspect.getsource(rowpattern_search)}\n\n# static kernel {_STATIC_DIGEST}\n"
drop_when_changed("rowpattern_kernel", (rk,))
#: How a measure's value is stored in an output row, by its SQL type (others: int64).
_MEASURE_TYPES = {RType.DOUBLE: Type.FLOAT, RType.BOOLEAN: Type.BOOL, RType.VARCHAR: Type.STRING}


def kernel_refusal(sp: SqlProgram) -> str | None:
    """Why `JitRowPatternEngine` does not run this program (then `RowPatternEngine` does),
    or None when it does."""
    if sp.all_rows and any(i.op is Op.BEGIN_EXCLUDE for i in sp.query.program.code):
        return "exclusion {- -} with ALL ROWS PER MATCH"
    try:
        kernel_functions(sp, lambda text: 0)
    except Unsupported as exc:
        return str(exc)
    return None


def kernel_supported(sp: SqlProgram) -> bool:
    """Whether `JitRowPatternEngine` runs this program (else `RowPatternEngine` does)."""
    return kernel_refusal(sp) is None


@dataclass
class _Rule:
    """One program's generated module and kernel arrays."""

    program: SqlProgram
    module: ModuleType
    code: I64
    prm: I64
    skip_mask: npt.NDArray[np.bool_]
    colmap: I64
    strs: I64  # pool ids of the rule's strings (constants, variable names)

    @property
    def n_words(self) -> int:
        return int(self.prm[rk.P_WORDS])


def _compile(sp: SqlProgram, pool: StringPool, emit_empty: bool) -> _Rule:
    texts: list[str] = []  # the rule's strings: the kernel reads their ids from `strs`

    def index(text: str) -> int:
        if text not in texts:
            texts.append(text)
        return texts.index(text)

    module = load_module(_TEMPLATE + kernel_functions(sp, index), "sqlrule")
    strs = np.array([pool.intern(text) for text in texts], np.int64)
    for ident in strs.tolist():
        pool.pin(ident)  # read by the kernel: never released
    program = sp.query.program
    code = np.array([(int(i.op), i.a, i.b) for i in program.code], np.int64).reshape(-1, 3)
    prm = np.zeros(rk.N_PARAMS, np.int64)
    prm[rk.P_STREAM] = sp.stream
    prm[rk.P_WITHIN] = -1 if sp.within_ms is None else sp.within_ms
    prm[rk.P_SKIP] = _SKIP[sp.query.skip]
    prm[rk.P_HIST_FREE] = int(program.history_free)
    prm[rk.P_WORDS] = (len(program.code) + 63) // 64
    prm[rk.P_LOOKBACK] = sp.lookback
    prm[rk.P_KEY_COLUMN] = sp.key_column
    prm[rk.P_EMIT_EMPTY] = int(emit_empty)
    prm[rk.P_POSITIONAL] = int(sp.positional)
    prm[rk.P_MEASURES] = len(sp.query.measures)
    prm[rk.P_ABSENT] = -1 if sp.absent is None else sp.absent
    prm[rk.P_GAP_LABEL] = len(program.names)
    prm[rk.P_ALL_ROWS] = int(sp.all_rows)
    skip_mask = np.zeros(max(len(program.names), 1), np.bool_)
    skip_mask[list(sp.query.skip_labels)] = True
    columns = [(c, col) for c, col in enumerate(sp.schema.columns) if col.stream == sp.stream]
    colmap = np.array(
        [(c, col.slot, int(col.type.stored_as_float)) for c, col in columns], np.int64
    ).reshape(-1, 3)
    return _Rule(sp, module, code, prm, skip_mask, colmap, strs)


class JitRowPatternEngine(WatermarkApi):
    """Keyed partitions, event time and SQL rules' row pattern matching, in kernels."""

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
        self.schema = self.programs[0].schema
        self.rules = [_compile(sp, pool, emit_empty) for sp in self.programs]
        self.states = [self.new_state(rule) for rule in self.rules]
        self.buffer = EventBatch.empty(self.schema)
        self.stream_max: dict[int, int] = {}
        self.stream_watermark: dict[int, int] = {}
        self.watermark = NO_TIME
        self.counters = EngineCounters()
        self._streams = np.zeros(len(self.schema.streams), np.bool_)  # read by some rule
        self._streams[[sp.stream for sp in self.programs]] = True
        self._no_streams = np.zeros(0, np.bool_)
        self.last_events: list[int] = []  # processing time: the event deciding each match
        for r in range(len(self.rules)):  # compile (or load) every kernel now
            self._step(r, EventBatch.empty(self.schema), NO_TIME, False, False)

    @staticmethod
    def new_state(rule: _Rule) -> State:
        """With ALL ROWS PER MATCH an output's measures are followed by its row's fields."""
        width = len(rule.program.query.measures) + (
            len(rule.colmap) if rule.program.all_rows else 0
        )
        return rk.new_state(len(rule.colmap), rule.n_words, width)

    # ------------------------------------------------------------------ engine API
    def process(self, batch: EventBatch) -> EngineOutput:
        out = EngineOutput()
        self.counters.events_in += len(batch)
        if self.config.processing_time:
            for r in range(len(self.rules)):
                self._step(r, batch, NO_TIME, False, True)
            self._collect(out, by_event=True)
            return out
        if len(batch):
            keep = split_late(
                self.schema, batch, self.stream_max, self.stream_watermark, self.counters, out
            )
            self.buffer = buffer_on_time(self.schema, self.buffer, batch, keep)
        self._release(min(self.stream_watermark.values(), default=NO_TIME), out)
        self.buffer = own_buffer(self.buffer, batch)
        return out

    def live_rows(self) -> int:
        """Rows retained for matches still to be decided (all rules and keys)."""
        return int(sum(int(state[0][:, rk.N].sum()) for state in self.states))

    def set_emit_empty(self, emit: bool) -> None:
        """Report empty matches too (tests comparing with the bounded matcher want them)."""
        for rule in self.rules:
            rule.prm[rk.P_EMIT_EMPTY] = int(emit)

    def live_keys(self) -> int:
        """(rule, key) pairs holding rows for matches still to be decided."""
        return int(sum(int((state[0][:, rk.N] > 0).sum()) for state in self.states))

    def state_bytes(self) -> int:
        return int(sum(a.nbytes for state in self.states for a in state))

    # ------------------------------------------------------------------ internals
    def _release(self, watermark: int, out: EngineOutput, ended: bool = False) -> None:
        if watermark <= self.watermark and not ended:
            return
        self.watermark = max(self.watermark, watermark)
        released, self.buffer = take_released(self.schema, self.buffer, watermark)
        events = released if released is not None else EventBatch.empty(self.schema)
        for r in range(len(self.rules)):
            self._step(r, events, watermark, ended, False)
        self._collect(out, by_event=False)

    def _step(self, r: int, batch: EventBatch, now: int, ended: bool, per_event: bool) -> None:
        if len(batch) and int(batch.key.min()) < 0:
            raise ValueError("key ids must be StringPool ids (>= 0)")
        rule = self.rules[r]
        streams = self._streams if per_event else self._no_streams
        self.states[r] = rule.module.step(
            self.states[r],
            rule.code,
            rule.prm,
            rule.skip_mask,
            rule.colmap,
            rule.strs,
            *kernel_columns(batch),
            now,
            ended,
            streams,
        )

    def _collect(self, out: EngineOutput, by_event: bool) -> None:
        """Drain every rule's outputs into matches: in rule order, or (processing time) in
        the order of the events that decided them, as the Python engine emits them."""
        found: list[tuple[int, int, Match]] = []
        for r, rule in enumerate(self.rules):
            state = self.states[r]
            meta = state[6]
            count, n_rows = int(meta[rk.M_OUT]), int(meta[rk.M_ROWS])
            if not count:
                continue
            omet, okf, orow = state[7][:count], state[8][:count], state[9][:n_rows]
            omi, omf, omv = state[10][:count], state[11][:count], state[12][:count]
            rows = orow.tolist()
            for o, (key, time, length, start, key_int, key_valid, event, _) in enumerate(
                omet.tolist()
            ):
                events = tuple(MatchedEvent(*row) for row in rows[start : start + length])
                key_value = self._key_value(rule, key_int, key_valid, float(okf[o]))
                measures = self._measures(rule, omi[o], omf[o], omv[o])
                row = self._row(rule, omi[o], omf[o], omv[o]) if rule.program.all_rows else None
                fields = alert_fields(rule.program, key_value, measures, row)
                found.append((event, r, Match(r, key, events, time, False, fields)))
            meta[rk.M_OUT] = meta[rk.M_ROWS] = 0
            self.counters.matches += count
            if len(state[7]) > 4096 or len(state[9]) > 16384:  # a burst: give the room back
                width = state[10].shape[1]
                self.states[r] = (*state[:7], *rk.new_outputs(width), *state[13:])
        if by_event:
            found.sort(key=lambda item: (item[0], item[1]))
            self.last_events = [event for event, _, _ in found]
        out.matches.extend(match for _, _, match in found)

    def _row(
        self,
        rule: _Rule,
        ints: npt.NDArray[np.int64],
        floats: npt.NDArray[np.float64],
        valid: npt.NDArray[np.bool_],
    ) -> tuple[Value, ...]:
        """ALL ROWS PER MATCH: the output row's fields (stored after the measures)."""
        at = len(rule.program.query.measures)
        fields = rule.program.schema.streams[rule.program.stream].fields
        types = [type_ for _, type_ in fields]
        return self._values(types, ints[at:], floats[at:], valid[at:])

    def _key_value(self, rule: _Rule, key_int: int, valid: int, key_float: float) -> Value:
        if not valid:
            return None
        fields = rule.program.schema.streams[rule.program.stream].fields
        return decode_value(fields[rule.program.key_column][1], key_int, key_float, self.pool)

    def _measures(
        self,
        rule: _Rule,
        ints: npt.NDArray[np.int64],
        floats: npt.NDArray[np.float64],
        valid: npt.NDArray[np.bool_],
    ) -> tuple[Value, ...]:
        types = [_MEASURE_TYPES.get(m.type, Type.INT) for m in rule.program.query.measures]
        return self._values(types, ints, floats, valid)

    def _values(
        self,
        types: Sequence[Type],
        ints: npt.NDArray[np.int64],
        floats: npt.NDArray[np.float64],
        valid: npt.NDArray[np.bool_],
    ) -> tuple[Value, ...]:
        """Values of these types from one output row (None where not valid)."""
        return tuple(
            decode_value(type_, int(ints[c]), float(floats[c]), self.pool) if valid[c] else None
            for c, type_ in enumerate(types)
        )

    # ------------------------------------------------------------------ snapshots
    def snapshot(self) -> bytes:
        """The state as versioned bytes (`nfa.rowpattern_jit_snapshot`)."""
        return write_snapshot(self)

    @classmethod
    def restore(
        cls,
        programs: Sequence[SqlProgram],
        pool: StringPool,
        data: bytes,
        config: EngineConfig | None = None,
        keep: CarryOver | None = None,
    ) -> JitRowPatternEngine:
        """From `snapshot()` bytes; with `keep` (see `nfa.migrate`), rule states are
        renumbered by it and the states of rules no new rule continues are dropped."""
        engine = cls(programs, pool, config)
        read_snapshot(engine, data, keep)
        return engine


def decode_value(type_: Type, as_int: int, as_float: float, pool: StringPool) -> Value:
    """A non-null value of a field of type `type_` as stored in the arrays."""
    if type_ is Type.STRING:
        return pool.value(as_int)
    if type_.stored_as_float:
        return as_float
    if type_ is Type.BOOL:
        return bool(as_int)
    return as_int


__all__ = ["JitRowPatternEngine", "kernel_refusal", "kernel_supported"]
