"""The string and key ids an engine's state still refers to, so the pools can free the rest.

A long-running engine sees strings unique per event (authorisation ids, device ids read by
a rule) and keys that come and go; `StringPool.release` frees the ids no state refers to
and gives them to later strings. Whoever releases must hand it every id that may still be
read: this module lists them for an engine. Over-approximating is safe (an id kept too
long costs memory only); missing one is not, so the lists follow the state closely:

- the product engine (`nfa.engine.Engine`): string columns of the events waiting for the
  watermark, stored event columns of string type (`EVI`), int aggregate slots over string
  columns (`RAI`), and as keys the waiting events' keys and every rule's live key rows.
  Freed rows of those arrays are included too (their values are stale, not read): simpler
  than following the free lists, and bounded by the arrays' size.
- the reference engine: string columns of every event a partial match, a held-back match
  or the buffer holds, and the keys holding any of those (its emptied per-(key, rule)
  states stay in its dict, but are not read before the key's next event).
- the row pattern engine: its rows hold strings as text; the keys of its states and buffer.
- the mixed engine: the union of its parts. Any other engine: None (do not release).

Program constants are pinned in the pool by the code generator (`StringPool.pin`); the
per-id lookup tables are derived data that refill themselves (`nfa.string_tables`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from nfa import rowpattern_kernel as rk
from nfa.batch import EventBatch
from nfa.engine import Engine
from nfa.expr import Type
from nfa.interpret import Event
from nfa.kernel_keys import live_keys
from nfa.kernel_layout import AG_INT
from nfa.mixed import MixedEngine
from nfa.program import Schema
from nfa.reference import ReferenceEngine
from nfa.rowpattern_jit import JitRowPatternEngine
from nfa.rowpattern_stream import RowPatternEngine
from nfa.sql_engine import SqlEngine

I64 = npt.NDArray[np.int64]
_NONE = np.zeros(0, np.int64)


def referenced_ids(engine: object) -> tuple[I64, I64] | None:
    """(string pool ids, key pool ids) that `engine`'s state may still read; None when
    this module does not know the engine (then nothing may be released)."""
    if isinstance(engine, Engine):
        return _product_engine_ids(engine)
    if isinstance(engine, ReferenceEngine):
        return _reference_ids(engine)
    if isinstance(engine, RowPatternEngine):
        keys = [k for _, k in engine.states] + [k for k, w in engine.buffer.items() if w]
        return _NONE, np.asarray(keys, np.int64)
    if isinstance(engine, JitRowPatternEngine):
        return _jit_sql_ids(engine)
    if isinstance(engine, MixedEngine | SqlEngine):
        sides = (engine.cep, engine.sql) if isinstance(engine, MixedEngine) else engine.parts
        parts = [referenced_ids(p) for p in sides if p is not None]
        if any(part is None for part in parts):
            return None
        known = [part for part in parts if part is not None]
        return (
            np.concatenate([_NONE] + [s for s, _ in known]),
            np.concatenate([_NONE] + [k for _, k in known]),
        )
    return None


def _product_engine_ids(engine: Engine) -> tuple[I64, I64]:
    schema = engine.schema
    strings: list[I64] = [_NONE, _buffer_strings(schema, engine.buffer)]
    keys: list[I64] = [_NONE, np.asarray(engine.buffer.key, np.int64)]
    for rule, state in zip(engine.ruleset.rules, engine.states, strict=True):
        layout = rule.layout
        for column in layout.columns:  # stored event columns (int ones by value_index)
            if schema.columns[column].type is Type.STRING:
                strings.append(state[6][:, layout.value_index[column]].astype(np.int64))
        for k, aggregate in enumerate(layout.aggregates):
            slot = int(layout.agg[k, AG_INT])
            column = aggregate.column
            if column >= 0 and slot >= 0 and schema.columns[column].type is Type.STRING:
                strings.append(state[1][:, slot].astype(np.int64))
        keys.append(live_keys(state).astype(np.int64))
    return np.concatenate(strings), np.concatenate(keys)


def _reference_ids(engine: ReferenceEngine) -> tuple[I64, I64]:
    columns = [c for c, col in enumerate(engine.schema.columns) if col.type is Type.STRING]
    events: list[Event] = [e for waiting in engine.buffer.values() for e in waiting]
    for state in engine.states.values():
        for run in [*state.runs, *state.completed]:
            events += [event for _, event in run.taken]
            if run.start is not None:
                events.append(run.start)
    strings = [e.values[c] for e in events for c in columns if e.values[c] is not None]
    keys = [k for (k, _), state in engine.states.items() if state.runs or state.completed]
    keys += [k for k, waiting in engine.buffer.items() if waiting]
    return np.asarray(strings, np.int64), np.asarray(keys, np.int64)


def _buffer_strings(schema: Schema, buffer: EventBatch) -> I64:
    slots = [c.slot for c in schema.columns if c.type is Type.STRING]
    if not slots or not len(buffer):
        return _NONE
    return np.asarray(buffer.ints[slots], np.int64).ravel()


def _jit_sql_ids(engine: JitRowPatternEngine) -> tuple[I64, I64]:
    """Strings of retained rows and waiting events; keys with rows or a kept position."""
    strings: list[I64] = [_NONE, _buffer_strings(engine.schema, engine.buffer)]
    keys: list[I64] = [_NONE, np.asarray(engine.buffer.key, np.int64)]
    for rule, state in zip(engine.rules, engine.states, strict=True):
        kt = state[0]
        live = np.flatnonzero((kt[:, rk.N] > 0) | (kt[:, rk.NUMBER] > 1) | (kt[:, rk.BASE] > 0))
        keys.append(live.astype(np.int64))
        fields = rule.program.schema.streams[rule.program.stream].fields
        strings_at = [c for c, (_, type_) in enumerate(fields) if type_ is Type.STRING]
        if not strings_at or not len(live):
            continue
        starts, counts = kt[live, rk.LO], kt[live, rk.N]
        slots = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
        for c in strings_at:
            strings.append(state[1][slots, c][state[3][slots, c]].astype(np.int64))
    return np.concatenate(strings), np.concatenate(keys)
