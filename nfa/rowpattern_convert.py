"""Moving SQL rules' state between the kernels and the Python row-pattern engine.

`from_python_snapshot` restores a `RowPatternEngine` snapshot into a `SqlEngine`
(checkpoints taken before SQL rules ran on kernels): the rules the kernels run get their
retained rows and waiting events as arrays, the others keep their Python state.
`python_snapshot` goes the other way, joining a `SqlEngine` snapshot's parts into the
Python format: `SqlEngine.restore` takes that path when a rule changes sides (another
engine choice, or `jit` switched) or a side is new, so that no rule loses its rows and no
side starts without the watermarks and waiting events. Nothing is lost or replayed: the
continuation is the one the Python engine would have produced.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from nfa import rowpattern_kernel as rk
from nfa.batch import EventBatch, StringPool
from nfa.expr import Type
from nfa.migrate import renumbering
from nfa.program import Schema
from nfa.reference import EngineConfig
from nfa.rowpattern_expr import Value
from nfa.rowpattern_jit import JitRowPatternEngine, decode_value
from nfa.rowpattern_jit_snapshot import read_arrays
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


def python_snapshot(
    programs: Sequence[SqlProgram],
    pool: StringPool,
    keep: CarryOver,
    old_on_kernel: Sequence[bool],
    fast_data: bytes,
    slow_data: bytes,
) -> bytes:
    """A `SqlEngine` snapshot's parts joined into one `RowPatternEngine` snapshot over the
    old rule numbering: the Python part's states as they are, the kernel part's retained
    rows decoded (for the rules that continue: `programs[new]` is the old rule's program,
    which gives their types), waiting events and watermarks from either part."""
    continues = renumbering(keep)
    fast_rules = [g for g, kind in enumerate(old_on_kernel) if kind]
    slow_rules = [g for g, kind in enumerate(old_on_kernel) if not kind]
    doc: dict[str, Any] = {"states": [], "buffer": [], "arrivals": 0}
    if slow_data:
        slow = orjson.loads(slow_data)
        doc.update({k: v for k, v in slow.items() if k != "states"})
        doc["states"] = [[slow_rules[r], k, s] for r, k, s in slow["states"]]
    if fast_data:
        meta, arrays = read_arrays(fast_data)
        for local, g in enumerate(fast_rules):
            if g in continues:
                doc["states"] += _python_states(programs[continues[g]], g, arrays, local, pool)
        doc.update({k: meta[k] for k in ("watermark", "stream_max", "stream_watermark")})
        doc.setdefault("counters", meta["counters"])
        # the kernel part buffers every stream's events (the Python part only its rules')
        doc["buffer"] = _python_events(programs[0].schema, arrays, pool)
        doc["arrivals"] = max(int(doc["arrivals"]), len(doc["buffer"]))
    return orjson.dumps(doc)


def _python_states(
    sp: SqlProgram, rule: int, arrays: dict[str, Any], local: int, pool: StringPool
) -> list[list[Any]]:
    kt, ints, floats, valid, seqs, tss = (arrays[f"rule{local}.{i}"] for i in range(6))
    fields = sp.schema.streams[sp.stream].fields
    out: list[list[Any]] = []
    for key in range(len(kt)):
        lo, n = int(kt[key, rk.LO]), int(kt[key, rk.N])
        base, pos, number = (int(kt[key, c]) for c in (rk.BASE, rk.POS, rk.NUMBER))
        if n == 0 and base == 0 and number == 1:
            continue
        rows = [
            [
                decode_value(type_, int(ints[slot, c]), float(floats[slot, c]), pool)
                if valid[slot, c]
                else None
                for c, (_, type_) in enumerate(fields)
            ]
            for slot in range(lo, lo + n)
        ]
        times, sequence = tss[lo : lo + n].tolist(), seqs[lo : lo + n].tolist()
        out.append([rule, key, [base, pos, number, rows, sequence, times]])
    return out


def _python_events(schema: Schema, arrays: dict[str, Any], pool: StringPool) -> list[list[Any]]:
    """The kernel part's waiting events as the Python engine buffers them (arrival order)."""
    stream, key, ts, seq = (arrays[f"buffer.{n}"] for n in ("stream", "key", "ts", "seq"))
    floats, ints, valid = (arrays[f"buffer.{n}"] for n in ("floats", "ints", "valid"))
    out: list[list[Any]] = []
    for i in range(len(ts)):
        s = int(stream[i])
        row = [
            None
            if not valid[c, i]
            else decode_value(col.type, 0, float(floats[col.slot, i]), pool)
            if col.type.stored_as_float
            else decode_value(col.type, int(ints[col.slot, i]), 0.0, pool)
            for c, col in enumerate(schema.columns)
            if col.stream == s
        ]
        out.append([int(ts[i]), i + 1, s, int(key[i]), int(seq[i]), row])
    return out
