"""Restoring a `RowPatternEngine` snapshot into a `SqlEngine` (checkpoints taken before SQL
rules ran on kernels): the rules the kernels run get their retained rows and waiting
events as arrays, the others keep their Python state. Nothing is lost or replayed: the
continuation is the one the Python engine would have produced.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from nfa import rowpattern_kernel as rk
from nfa.batch import EventBatch, StringPool
from nfa.expr import Type
from nfa.reference import EngineConfig
from nfa.rowpattern_expr import Value
from nfa.rowpattern_jit import JitRowPatternEngine
from nfa.rowpattern_key import KeyRows
from nfa.rowpattern_rule import SqlProgram
from nfa.rowpattern_stream import RowPatternEngine

if TYPE_CHECKING:
    from nfa.migrate import CarryOver
    from nfa.sql_engine import SqlEngine


def from_python_snapshot(
    programs: Sequence[SqlProgram],
    pool: StringPool,
    data: bytes,
    config: EngineConfig | None,
    keep: CarryOver | None,
    jit: bool,
) -> SqlEngine:
    from nfa.sql_engine import SqlEngine

    old = RowPatternEngine.restore(programs, pool, data, config, keep)
    engine = SqlEngine(programs, pool, config, jit)
    for part, rules in ((engine.fast, engine.fast_rules), (engine.slow, engine.slow_rules)):
        if part is None:
            continue
        part.stream_max = dict(old.stream_max)
        part.stream_watermark = dict(old.stream_watermark)
        part.watermark = old.watermark
        part.counters = type(old.counters)(**vars(old.counters))
        local = {rule: i for i, rule in enumerate(rules)}
        states = {(local[r], k): s for (r, k), s in old.states.items() if r in local}
        if isinstance(part, RowPatternEngine):
            part.states = states
            part.buffer = {k: list(events) for k, events in old.buffer.items()}
            part.arrivals = old.arrivals
        else:
            _load_kernel_states(part, states)
            part.buffer = _waiting_events(part, old)
    return engine


def _load_kernel_states(
    engine: JitRowPatternEngine, states: dict[tuple[int, int], KeyRows]
) -> None:
    for r, rule in enumerate(engine.rules):
        sp = rule.program
        fields = sp.schema.streams[sp.stream].fields
        mine = sorted((k, s) for (rr, k), s in states.items() if rr == r)
        if not mine:
            continue
        total = sum(len(s.rows) + 4 for _, s in mine)
        size = max(1024, 2 * total)
        kt = np.zeros((max(k for k, _ in mine) + 1, rk.KT), np.int64)
        kt[:, rk.NUMBER] = 1
        ints = np.zeros((size, len(fields)), np.int64)
        floats = np.zeros((size, len(fields)), np.float64)
        valid = np.zeros((size, len(fields)), np.bool_)
        seqs, tss = np.zeros(size, np.int64), np.zeros(size, np.int64)
        top = 0
        for key, state in mine:
            n = len(state.rows)
            kt[key, [rk.LO, rk.N, rk.SEG, rk.SEG_END]] = (top, n, top, top + n + 4)
            kt[key, [rk.BASE, rk.POS, rk.NUMBER]] = (state.base, state.pos, state.number)
            for i, row in enumerate(state.rows):
                for c, (_, type_) in enumerate(fields):
                    if row[c] is not None:
                        valid[top + i, c] = True
                        target = floats if type_.stored_as_float else ints
                        target[top + i, c] = _encode(row[c], type_, engine.pool)
            seqs[top : top + n] = state.seqs
            tss[top : top + n] = state.times
            top += n + 4
        meta = np.zeros(rk.META, np.int64)
        meta[rk.M_TOP] = top
        fresh = engine.states[r]
        engine.states[r] = (kt, ints, floats, valid, seqs, tss, meta, *fresh[7:])


def _encode(value: Value, type_: Type, pool: StringPool) -> int | float:
    """A non-null value as a batch stores it (strings as pool ids, bools as 0/1)."""
    if type_ is Type.STRING:
        return pool.intern(str(value))
    if type_.stored_as_float:
        return float(value)  # type: ignore[arg-type]
    return int(value)  # type: ignore[call-overload,no-any-return]


def _waiting_events(engine: JitRowPatternEngine, old: RowPatternEngine) -> EventBatch:
    """The Python engine's waiting events (rows of their stream's fields) as a batch."""
    schema = engine.schema
    events = sorted((e for waiting in old.buffer.values() for e in waiting), key=lambda e: e[1])
    n = len(events)
    batch = EventBatch(
        np.zeros(n, np.int8),
        np.zeros(n, np.int64),
        np.zeros(n, np.int64),
        np.zeros(n, np.int64),
        np.zeros((schema.n_float, n), np.float64),
        np.zeros((schema.n_int, n), np.int64),
        np.zeros((len(schema.columns), n), np.bool_),
    )
    for i, (ts, _arrival, stream, key, seq, row) in enumerate(events):
        batch.stream[i], batch.key[i], batch.ts[i], batch.seq[i] = stream, key, ts, seq
        columns = [(c, col) for c, col in enumerate(schema.columns) if col.stream == stream]
        for (c, col), value in zip(columns, row, strict=True):
            if value is None:
                continue
            batch.valid[c, i] = True
            target = batch.floats if col.type.stored_as_float else batch.ints
            target[col.slot, i] = _encode(value, col.type, engine.pool)
    return batch
