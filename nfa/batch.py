"""Columnar event batches: what the engines consume.

A batch holds n events of one or more streams as numpy columns: the stream index, the key
id, the event time (ms), a sequence number that identifies the event (its input offset or
event id), and the field values in two matrices: `floats` (float64, one row per FLOAT
column) and `ints` (int64, one row per other column; strings as `StringPool` ids, bools as
0/1), plus `valid` (False where a value is null or the event's stream lacks the column).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nfa.expr import Type
from nfa.program import Schema


class StringPool:
    """Interns strings as int ids; id 0 is the empty string.

    Ids are stable: `release` frees the ids nothing references any more (a long-running
    service reads fields unique per event, and its pools would otherwise grow with history),
    and a freed id is given to a later new string. Because an id can change its string,
    whatever caches per-id results (`nfa.string_tables`, the decoder's string table) watches
    `generation`, which `release` increments, and `recycled`, the ids reused since.
    `len()` bounds the ids (the size of per-id arrays); released ids at the end are dropped.
    """

    def __init__(self) -> None:
        self._ids: dict[str, int] = {"": 0}
        self._values: list[str | None] = [""]
        self._free: list[int] = []
        self._pinned: set[int] = {0}
        self.generation = 0
        self.recycled: list[int] = []  # ids given again since the last `release`

    def intern(self, value: str) -> int:
        found = self._ids.get(value)
        if found is None:
            if self._free:
                found = self._free.pop()
                self._values[found] = value
                self.recycled.append(found)
            else:
                found = len(self._values)
                self._values.append(value)
            self._ids[value] = found
        return found

    def pin(self, ident: int) -> None:
        """Never release `ident` (a constant compiled into a kernel)."""
        self._pinned.add(ident)

    def lookup(self, value: str) -> int | None:
        return self._ids.get(value)

    def value(self, ident: int) -> str:
        found = self._values[ident]
        if found is None:
            raise KeyError(f"string id {ident} was released")
        return found

    def get(self, ident: int) -> str | None:
        """The string of `ident`, None when it was released."""
        return self._values[ident]

    def __len__(self) -> int:
        return len(self._values)

    @property
    def live(self) -> int:
        """How many strings the pool holds (ids not released)."""
        return len(self._ids)

    def release(self, referenced: npt.NDArray[np.int64]) -> int:
        """Free every id not in `referenced` (nor pinned); returns how many were freed."""
        keep = np.zeros(len(self._values), np.bool_)
        inside = referenced[(referenced >= 0) & (referenced < len(self._values))]
        keep[inside] = True
        keep[list(self._pinned)] = True
        freed = 0
        for ident in np.flatnonzero(~keep).tolist():
            value = self._values[ident]
            if value is not None:
                del self._ids[value]
                self._values[ident] = None
                freed += 1
        while self._values[-1] is None:  # released ids at the end: the pool shrinks
            self._values.pop()
        # the smallest free ids are handed out first, so the largest tend to be released
        self._free = [i for i in range(len(self._values) - 1, 0, -1) if self._values[i] is None]
        self.generation += 1
        self.recycled = []
        return freed

    def state(self) -> list[str | int]:
        """Every id's string in id order, a run of n released ids as the int -n;
        `from_state` inverts it. Pins are not kept: kernels pin their constants again
        when they are built."""
        out: list[str | int] = []
        for value in self._values:
            if value is not None:
                out.append(value)
            elif out and isinstance(out[-1], int):
                out[-1] -= 1
            else:
                out.append(-1)
        return out

    @classmethod
    def from_state(cls, state: list[str | int]) -> StringPool:
        pool = cls()
        values: list[str | None] = []
        for item in state:
            if isinstance(item, int):
                values += [None] * -item
            else:
                values.append(item)
        pool._values = values or [""]
        pool._ids = {v: i for i, v in enumerate(pool._values) if v is not None}
        pool._free = [i for i in range(len(pool._values) - 1, 0, -1) if pool._values[i] is None]
        return pool


I64 = npt.NDArray[np.int64]


@dataclass
class EventBatch:
    stream: npt.NDArray[np.int8]
    key: I64
    ts: I64
    seq: I64
    floats: npt.NDArray[np.float64]
    ints: I64
    valid: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.ts)

    def slice(self, start: int, stop: int) -> EventBatch:
        return EventBatch(
            self.stream[start:stop],
            self.key[start:stop],
            self.ts[start:stop],
            self.seq[start:stop],
            self.floats[:, start:stop],
            self.ints[:, start:stop],
            self.valid[:, start:stop],
        )

    def take(self, index: npt.NDArray[np.int64]) -> EventBatch:
        # np.take along axis 1 gives C-ordered columns directly; `a[:, index]` gives
        # F-ordered ones that the engine then copies again (5x slower, measured).
        return EventBatch(
            self.stream[index],
            self.key[index],
            self.ts[index],
            self.seq[index],
            np.take(self.floats, index, axis=1),
            np.take(self.ints, index, axis=1),
            np.take(self.valid, index, axis=1),
        )

    @staticmethod
    def empty(schema: Schema) -> EventBatch:
        return EventBatch(
            np.zeros(0, np.int8),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros((schema.n_float, 0), np.float64),
            np.zeros((schema.n_int, 0), np.int64),
            np.zeros((len(schema.columns), 0), np.bool_),
        )

    @staticmethod
    def concat(schema: Schema, batches: list[EventBatch]) -> EventBatch:
        if not batches:
            return EventBatch.empty(schema)
        return EventBatch(
            np.concatenate([b.stream for b in batches]),
            np.concatenate([b.key for b in batches]),
            np.concatenate([b.ts for b in batches]),
            np.concatenate([b.seq for b in batches]),
            np.concatenate([b.floats for b in batches], axis=1),
            np.concatenate([b.ints for b in batches], axis=1),
            np.concatenate([b.valid for b in batches], axis=1),
        )


def batch_from_records(
    schema: Schema,
    records: Iterable[tuple[str, Mapping[str, object]]],
    pool: StringPool,
    keys: StringPool,
    first_seq: int = 0,
    timestamps: Iterable[int] | None = None,
) -> EventBatch:
    """Build a batch from (stream name, field dict) pairs: for tests, files and the API.

    The key of each event is its stream's key field, interned in `keys`. Event time is the
    stream's time field, or the given `timestamps` (record or processing time).
    """
    rows = list(records)
    n = len(rows)
    stream_ix = np.zeros(n, np.int8)
    key = np.zeros(n, np.int64)
    ts = np.zeros(n, np.int64)
    floats = np.zeros((schema.n_float, n), np.float64)
    ints = np.zeros((schema.n_int, n), np.int64)
    valid = np.zeros((len(schema.columns), n), np.bool_)
    given_ts = list(timestamps) if timestamps is not None else None
    by_stream = {s.name: i for i, s in enumerate(schema.streams)}
    for row, (stream_name, values) in enumerate(rows):
        s_index = by_stream[stream_name]
        stream = schema.streams[s_index]
        stream_ix[row] = s_index
        key[row] = keys.intern(str(values.get(stream.key, "")))
        if given_ts is not None:
            ts[row] = given_ts[row]
        elif stream.time_field is not None:
            ts[row] = int(values[stream.time_field])  # type: ignore[call-overload]
        for c_index, column in enumerate(schema.columns):
            if column.stream != s_index:
                continue
            value = values.get(column.field)
            if value is None:
                continue
            valid[c_index, row] = True
            if column.type is Type.FLOAT:
                floats[column.slot, row] = float(value)  # type: ignore[arg-type]
            elif column.type is Type.STRING:
                ints[column.slot, row] = pool.intern(str(value))
            else:
                ints[column.slot, row] = int(value)  # type: ignore[call-overload]
    seq = np.arange(first_seq, first_seq + n, dtype=np.int64)
    return EventBatch(stream_ix, key, ts, seq, floats, ints, valid)
