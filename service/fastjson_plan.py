"""The Python side of the JSON kernel: a stream's field layout, buffers and reason texts.

`KernelPlan` turns a stream's schema into the arrays `scan_batch` reads, allocates a
batch's columns, runs the kernel and words the reasons of the messages it rejected. It
also decides which string fields are worth caching: a field whose values are nearly always
new (an event id) would only fill the string tables, so it bypasses them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from nfa import kernel_intrinsics
from nfa.expr import Type
from nfa.kernel_cache import drop_when_changed
from nfa.program import Column, Schema
from service import fastjson, fastjson_intrinsics, fastjson_parse, fastjson_strings, fastjson_time
from service.fastjson import (
    KIND_NAMES,
    MAX_KEYS,
    R_JSON,
    R_MISSING,
    R_TYPE,
    T_BOOL,
    T_FLOAT,
    T_INT,
    T_STRING,
    T_STRING_UNUSED,
    T_TIMESTAMP,
    name_hash,
    scan_batch,
)
from service.fastjson_parse import ERROR_TEXT, MAX_DEPTH
from service.fastjson_strings import StringTables

_TYPE_CODES = {
    Type.FLOAT: T_FLOAT,
    Type.INT: T_INT,
    Type.BOOL: T_BOOL,
    Type.STRING: T_STRING,
    Type.TIMESTAMP: T_TIMESTAMP,
}
_EXPECTED = {
    Type.FLOAT: "a number",
    Type.INT: "an integer",
    Type.BOOL: "true or false",
    Type.STRING: "a string",
}
MIN_SAMPLE = 4096  # lookups of a field before judging whether caching it pays
NEW_RATIO = 0.9  # at a table clear, uncache a field when more of its values were new


class KernelPlan:
    """One stream's fields as kernel arrays, plus which string fields to cache."""

    def __init__(
        self, schema: Schema, stream_index: int, interns: Callable[[int], bool] | None = None
    ):
        """`interns(column)` False: a string field checked for its type but not interned."""
        self.schema = schema
        stream = schema.streams[stream_index]
        indexed = [(i, c) for i, c in enumerate(schema.columns) if c.stream == stream_index]
        self.fields: list[Column] = [c for _, c in indexed]
        names = [c.field.encode() for c in self.fields]
        k = len(self.fields)
        self.key_field = next(f for f, c in enumerate(self.fields) if c.field == stream.key)
        time_f = next((f for f, c in enumerate(self.fields) if c.field == stream.time_field), -1)
        self.time_column = self.fields[time_f] if time_f >= 0 else None
        self.plan = np.zeros((k + 1, 5), np.int64)
        offset = 0
        for f, (index, column) in enumerate(indexed):
            code = _TYPE_CODES[column.type]  # field types are these five (cep.ast)
            if code == T_STRING and interns is not None and not interns(index):
                code = T_STRING_UNUSED
            self.plan[f] = (code, column.slot, index, offset, offset + len(names[f]))
            offset += len(names[f])
        key_is_str = self.fields[self.key_field].type is Type.STRING
        self.plan[k, :3] = (self.key_field, time_f, int(key_is_str))
        self.names = np.frombuffer(b"".join(names) or b" ", np.uint8).copy()
        self.name_hash = np.asarray([name_hash(n) for n in names] or [0], np.uint64)
        size = 1 << max(4, (4 * k).bit_length())
        self.field_table = np.full(size, -1, np.int64)
        for f, name in enumerate(names):
            slot = name_hash(name) & (size - 1)
            while self.field_table[slot] >= 0:
                slot = (slot + 1) & (size - 1)
            self.field_table[slot] = f
        self.string_fields = [f for f in range(k) if self.plan[f, 0] == T_STRING]
        self.string_slots = [self.fields[f].slot for f in self.string_fields]
        self.cached = np.ones(max(k, 1), np.bool_)
        self.stats = np.zeros((max(k, 1), 2), np.int64)  # per field: hits, misses
        self.stack = np.zeros(MAX_DEPTH + 1, np.uint8)
        self.work = np.zeros((5, max(k, 1)), np.int64)
        self.todo = np.zeros((0, 5), np.int64)
        self.reasons = np.zeros((0, 4), np.int64)
        self.work_float = np.zeros(max(k, 1), np.float64)
        self.key_work = np.zeros((2, MAX_KEYS, 3), np.int64)
        self.fix = np.zeros((0, 5), np.int64)

    def scan(
        self,
        buf: npt.NDArray[np.uint8],
        offs: npt.NDArray[np.int64],
        status: Any,
        tables: StringTables,
    ) -> tuple[Any, Any, Any, Any, Any, Any]:
        """Run the kernel: (floats, ints, valid, key, fixups, reason codes) of the batch."""
        n = len(offs) - 1
        schema = self.schema
        floats = np.zeros((schema.n_float, n), np.float64)
        ints = np.zeros((schema.n_int, n), np.int64)
        valid = np.zeros((len(schema.columns), n), np.bool_)
        key = np.zeros(n, np.int64)
        if len(self.reasons) < n:  # written by the kernel for each message it rejects
            self.reasons = np.empty((n, 4), np.int64)
        reason = self.reasons[:n]
        if tables.prepare(n * (len(self.string_fields) + 1), 2 * len(buf)):
            self._judge_fields()
        if len(self.todo) < n * len(self.string_fields):
            self.todo = np.zeros((n * len(self.string_fields), 5), np.int64)
        if len(self.fix) < n * (len(self.fields) + 1):
            self.fix = np.zeros((n * (len(self.fields) + 1), 5), np.int64)
        n_fix = scan_batch(
            buf,
            offs,
            status,
            self.plan,
            self.names,
            self.name_hash,
            self.field_table,
            self.cached,
            floats,
            ints,
            valid,
            key,
            tables.rows,
            tables.row_bytes,
            tables.arena,
            tables.fresh,
            tables.state,
            tables.new_slot,
            tables.new_roles,
            self.fix,
            reason,
            self.stats,
            self.stack,
            self.work,
            self.work_float,
            self.key_work,
            self.todo,
        )
        return floats, ints, valid, key, self.fix[:n_fix], reason

    def _judge_fields(self) -> None:
        """The string table filled up: stop caching the fields that filled it.

        A field whose values were nearly all new since the last clear (an event id) only
        evicts the recurring ones (cards, merchants). Judged when the table is full, not
        after a fixed number of lookups, so that a field with many recurring values (100k
        cards) has had the time to repeat them.
        """
        for f in self.string_fields:
            hits, misses = self.stats[f]
            if self.cached[f] and hits + misses >= MIN_SAMPLE:
                self.cached[f] = misses <= NEW_RATIO * (hits + misses)
        self.stats[:] = 0

    def retry_cache(self) -> None:
        """Cache every string field again (values can change character over time), judged
        afresh at the next clear."""
        self.cached[:] = True
        self.stats[:] = 0

    def reason(self, raw: bytes, code: npt.NDArray[np.int64]) -> str:
        """The text of a rejection the kernel coded as (code, field, a, b)."""
        kind, f, a, b = (int(x) for x in code)
        if kind == R_JSON:
            return f"invalid JSON: {ERROR_TEXT.get(a, 'unexpected content')} at byte {b}"
        column = self.fields[f]
        if kind == R_MISSING:
            which = "key" if f == self.key_field else "time"
            return f"missing {which} field `{column.field}`"
        if kind == R_TYPE:
            expected = _EXPECTED.get(column.type, "a timestamp")
            return f"field `{column.field}`: expected {expected}, got {KIND_NAMES[a]}"
        value = orjson.loads(raw[a:b])
        return f"field `{column.field}`: invalid timestamp {value!r}"


# The decoder's kernels inline helpers of each other's modules and nfa's intrinsics: recompile
# them all when any of those sources changed (`nfa.kernel_cache`).
drop_when_changed(
    "fastjson_helpers",
    (fastjson, fastjson_intrinsics, fastjson_parse, fastjson_strings, fastjson_time),
    (kernel_intrinsics,),
)
