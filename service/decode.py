"""Decode a batch of JSON Kafka values of one stream into the engine's columns.

`StreamDecoder` is the fast path: the batch's values are joined into one byte buffer and
scanned by a Numba kernel (`service.fastjson`), which fills the columns directly and leaves
Python only new strings to intern and the rare values or messages it does not parse itself.
`ReferenceDecoder` is the plain orjson path: the specification the fast path is tested
against, and what it hands such messages to. A value that is not JSON, breaks the stream's
schema or is too large does not stop the batch: it comes back as a `Rejected` entry with
the reason, for the dead-letter topic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from nfa.batch import EventBatch, StringPool
from nfa.expr import Type
from nfa.program import Schema
from service.fastjson import (
    FALLBACK_STATUS,
    OK,
    REJECTED,
    SKIPPED,
    X_FLOAT,
    X_KEY,
    X_STRING,
)
from service.fastjson_plan import KernelPlan
from service.fastjson_strings import KEYS, POOL, StringTables

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Rejected:
    index: int  # position in the decoded batch's input
    reason: str


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def parse_timestamp(value: object) -> int | None:
    """Epoch milliseconds from an int/float (ms) or an ISO-8601 string; None if invalid.

    Values outside the int64 range are invalid: the engine stores timestamps as int64.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if _INT64_MIN <= value <= _INT64_MAX else None
    if isinstance(value, float):
        return int(value) if -9.223372036854775e18 <= value <= 9.223372036854775e18 else None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            return None
        return int(parsed.timestamp() * 1000)
    return None


def _checker(type_: Type) -> tuple[type | tuple[type, ...], str]:
    if type_ is Type.FLOAT:
        return (int, float), "a number"
    if type_ is Type.INT:
        return int, "an integer"
    if type_ is Type.BOOL:
        return bool, "true or false"
    if type_ is Type.STRING:
        return str, "a string"
    return (int, float, str), "a timestamp"


class ReferenceDecoder:
    """Decodes one stream's JSON values with orjson, column by column; shares the pools.

    The specification of `StreamDecoder`, which also hands it the messages its kernel does
    not decide itself (nesting deeper than 500, duplicate keys, huge numbers...).
    """

    def __init__(
        self,
        schema: Schema,
        stream: str,
        pool: StringPool,
        keys: StringPool,
        max_bytes: int,
        used: frozenset[int] | None = None,
    ):
        """`used`: the schema columns some rule reads (None: all). A string field no rule
        reads is still type-checked but not interned: ids unique to every event (event and
        transaction ids) would cost a pool entry each and grow the pool without bound."""
        self.schema = schema
        self.used = used
        self.stream_index = schema.stream_index(stream)
        self.stream = schema.streams[self.stream_index]
        self.columns = [
            (i, c) for i, c in enumerate(schema.columns) if c.stream == self.stream_index
        ]
        self.pool = pool
        self.keys = keys
        self.max_bytes = max_bytes

    def forget_strings(self) -> None:
        """The pools released ids (`StringPool.release`): drop any id remembered for a
        string. This decoder remembers none."""

    def interns(self, column: int) -> bool:
        """Whether a string column's values go into the pool (used, or the key)."""
        if self.used is None or column in self.used:
            return True
        return self.schema.columns[column].field == self.stream.key

    def decode(
        self, values: Sequence[bytes | None], seqs: Sequence[int], record_ts: Sequence[int]
    ) -> tuple[EventBatch, list[Rejected]]:
        rejected: list[Rejected] = []
        docs: list[dict[str, object]] = []
        rows: list[int] = []
        for i, value in enumerate(values):
            if value is None:
                rejected.append(Rejected(i, "empty value"))
            elif len(value) > self.max_bytes:
                rejected.append(
                    Rejected(
                        i, f"value of {len(value)} bytes exceeds the limit of {self.max_bytes}"
                    )
                )
            else:
                try:
                    doc = orjson.loads(value)
                except orjson.JSONDecodeError as exc:
                    rejected.append(Rejected(i, f"invalid JSON: {exc}"))
                    continue
                if not isinstance(doc, dict):
                    rejected.append(
                        Rejected(i, f"expected a JSON object, got {type(doc).__name__}")
                    )
                    continue
                docs.append(doc)
                rows.append(i)
        ok = np.ones(len(docs), np.bool_)
        reasons: dict[int, str] = {}
        n = len(docs)
        floats = np.zeros((self.schema.n_float, n), np.float64)
        ints = np.zeros((self.schema.n_int, n), np.int64)
        valid = np.zeros((len(self.schema.columns), n), np.bool_)
        key_name, time_name = self.stream.key, self.stream.time_field
        for c_index, column in self.columns:
            accepted, expected = _checker(column.type)
            target = floats[column.slot] if column.type is Type.FLOAT else ints[column.slot]
            present = valid[c_index]
            for row, doc in enumerate(docs):
                field_value = doc.get(column.field)
                if field_value is None:
                    if column.field in (key_name, time_name):
                        reasons.setdefault(
                            row,
                            f"missing {'key' if column.field == key_name else 'time'} field `{column.field}`",
                        )
                    continue
                if not isinstance(field_value, accepted) or (
                    isinstance(field_value, bool) and column.type is not Type.BOOL
                ):
                    reasons.setdefault(
                        row,
                        f"field `{column.field}`: expected {expected}, got {type(field_value).__name__}",
                    )
                    continue
                if column.type is Type.STRING:
                    if not self.interns(c_index):
                        continue
                    target[row] = self.pool.intern(field_value)  # type: ignore[arg-type]
                elif column.type is Type.INT and not _INT64_MIN <= field_value <= _INT64_MAX:  # type: ignore[operator]
                    reasons.setdefault(row, f"field `{column.field}`: integer out of range")
                    continue
                elif column.type is Type.TIMESTAMP:
                    stamp = parse_timestamp(field_value)
                    if stamp is None:
                        reasons.setdefault(
                            row, f"field `{column.field}`: invalid timestamp {field_value!r}"
                        )
                        continue
                    target[row] = stamp
                else:
                    target[row] = field_value
                present[row] = True
        key = np.zeros(n, np.int64)
        ts = np.zeros(n, np.int64)
        key_type = self.schema.column(self.stream.name, key_name).type
        time_col = (
            self.schema.columns.index(self.schema.column(self.stream.name, time_name))
            if time_name
            else -1
        )
        for row, doc in enumerate(docs):
            if row in reasons:
                ok[row] = False
                continue
            raw_key = doc[key_name]
            key[row] = self.keys.intern(raw_key if key_type is Type.STRING else str(raw_key))  # type: ignore[arg-type]
        for row in range(n):
            if not ok[row]:
                continue
            if time_col >= 0:
                ts[row] = ints[self.schema.columns[time_col].slot, row]
            else:
                ts[row] = record_ts[rows[row]]
        for row, reason in sorted(reasons.items()):
            rejected.append(Rejected(rows[row], reason))
        keep = np.flatnonzero(ok)
        seq = np.asarray([seqs[rows[r]] for r in keep], np.int64)
        batch = EventBatch(
            np.full(len(keep), self.stream_index, np.int8),
            key[keep],
            ts[keep],
            seq,
            floats[:, keep],
            ints[:, keep],
            valid[:, keep],
        )
        rejected.sort(key=lambda r: r.index)
        return batch, rejected


class StreamDecoder(ReferenceDecoder):
    """Decodes one stream's JSON values with the Numba kernel; same results as the reference.

    Keeps a per-decoder string table (bytes → pool ids) so that after warm-up strings are
    resolved in the kernel; a string field whose values are almost all new (event ids)
    stops being cached when it fills the table, and is retried every `RETRY_BATCHES`
    batches.
    """

    RETRY_BATCHES = 256

    def __init__(
        self,
        schema: Schema,
        stream: str,
        pool: StringPool,
        keys: StringPool,
        max_bytes: int,
        used: frozenset[int] | None = None,
    ):
        super().__init__(schema, stream, pool, keys, max_bytes, used)
        self.plan = KernelPlan(schema, self.stream_index, self.interns)
        self.tables = StringTables()
        self._batches = 0

    def forget_strings(self) -> None:
        """The kernel's string table caches pool and key ids: start it again empty."""
        self.tables.clear(len(self.tables.rows))

    def decode(
        self, values: Sequence[bytes | None], seqs: Sequence[int], record_ts: Sequence[int]
    ) -> tuple[EventBatch, list[Rejected]]:
        n = len(values)
        status = np.zeros(n, np.int64)
        reasons: dict[int, str] = {}
        try:  # faster than looking for None first, which costs a comparison per value
            raw = b"".join(values)  # type: ignore[arg-type]
        except TypeError:
            for i, value in enumerate(values):
                if value is None:
                    status[i] = SKIPPED
                    reasons[i] = "empty value"
            values = [b"" if v is None else v for v in values]
            raw = b"".join(values)  # type: ignore[arg-type]
        lengths = np.fromiter(map(len, values), np.int64, n)  # type: ignore[arg-type]
        for i in np.flatnonzero(lengths > self.max_bytes).tolist():
            status[i] = SKIPPED
            reasons[i] = f"value of {lengths[i]} bytes exceeds the limit of {self.max_bytes}"
        offs = np.zeros(n + 1, np.int64)
        np.cumsum(lengths, out=offs[1:])
        columns = self.plan.scan(np.frombuffer(raw, np.uint8), offs, status, self.tables)
        floats, ints, valid, key, fixes, reason = columns
        self._intern_new(ints, key)
        self._fixups(raw, fixes, status, reasons, ints, floats, key)
        for i in np.flatnonzero(status == REJECTED).tolist():
            if i not in reasons:
                reasons[i] = self.plan.reason(raw, reason[i])
        fallback = np.flatnonzero(status == FALLBACK_STATUS).tolist()
        if fallback:
            self._fall_back(values, seqs, record_ts, fallback, status, reasons, columns)
        time_col = self.plan.time_column
        ts = ints[time_col.slot].copy() if time_col else np.asarray(record_ts, np.int64)
        keep = status == OK
        seq = np.asarray(seqs, np.int64)
        rejected = [Rejected(i, reasons[i]) for i in sorted(reasons)]
        if not rejected:
            return EventBatch(np.full(n, self.stream_index, np.int8), key, ts, seq, floats, ints, valid), []  # fmt: skip
        batch = EventBatch(
            np.full(int(keep.sum()), self.stream_index, np.int8),
            key[keep],
            ts[keep],
            seq[keep],
            floats[:, keep],
            ints[:, keep],
            valid[:, keep],
        )
        return batch, rejected

    def _intern_new(self, ints: I64, key: I64) -> None:
        """Intern the strings the kernel had not seen; replace their provisional ids."""
        self._batches += 1
        if self._batches % self.RETRY_BATCHES == 0:
            self.plan.retry_cache()
        texts, roles, slots = self.tables.new_strings()
        if not texts:
            return
        pool_ids = _intern_all(self.pool, texts, roles & POOL != 0)
        key_ids = _intern_all(self.keys, texts, roles & KEYS != 0)
        self.tables.learn(roles, slots, pool_ids, key_ids)
        for slot in self.plan.string_slots:
            _resolve(ints[slot], pool_ids)
        _resolve(key, key_ids)

    def _fixups(
        self,
        raw: bytes,
        fixes: I64,
        status: I64,
        reasons: dict[int, str],
        ints: I64,
        floats: npt.NDArray[np.float64],
        key: I64,
    ) -> None:
        """The values the kernel left to Python, parsed with orjson like the reference."""
        fields, key_f = self.plan.fields, self.plan.key_field
        for kind, row, f, start, stop in fixes.tolist():
            if status[row] != OK:
                continue
            value = orjson.loads(raw[start:stop])
            column = fields[f]
            if kind == X_STRING:
                ints[column.slot, row] = self.pool.intern(value)
                if f == key_f:
                    key[row] = self.keys.intern(value)
            elif kind == X_FLOAT:
                floats[column.slot, row] = value
            elif kind == X_KEY:
                key[row] = self.keys.intern(str(value))
            else:
                stamp = parse_timestamp(value)
                if stamp is None:
                    status[row] = REJECTED
                    reasons[row] = f"field `{column.field}`: invalid timestamp {value!r}"
                else:
                    ints[column.slot, row] = stamp

    def _fall_back(
        self,
        values: Sequence[bytes | None],
        seqs: Sequence[int],
        record_ts: Sequence[int],
        rows: list[int],
        status: I64,
        reasons: dict[int, str],
        columns: tuple[npt.NDArray[Any], ...],
    ) -> None:
        """Decode the messages the kernel left undecided with the reference decoder."""
        floats, ints, valid, key = columns[:4]
        batch, rejected = super().decode(
            [values[i] for i in rows], [seqs[i] for i in rows], [record_ts[i] for i in rows]
        )
        for item in rejected:
            status[rows[item.index]] = REJECTED
            reasons[rows[item.index]] = item.reason
        dropped = {item.index for item in rejected}
        accepted = np.asarray([r for j, r in enumerate(rows) if j not in dropped], np.int64)
        status[accepted] = OK
        floats[:, accepted] = batch.floats
        ints[:, accepted] = batch.ints
        valid[:, accepted] = batch.valid
        key[accepted] = batch.key


def _intern_all(pool: StringPool, texts: list[str], wanted: npt.NDArray[np.bool_]) -> I64:
    """The ids of the wanted texts in `pool` (interned now), 0 for the others."""
    if wanted.all():
        return np.fromiter(map(pool.intern, texts), np.int64, len(texts))
    ids = np.zeros(len(texts), np.int64)
    if wanted.any():
        rows = np.flatnonzero(wanted)
        ids[rows] = [pool.intern(texts[i]) for i in rows.tolist()]
    return ids


def _resolve(column: I64, new_ids: I64) -> None:
    """Replace provisional ids (-1 - index into new_ids) in place."""
    pending = column < 0
    if pending.any():
        column[pending] = new_ids[-1 - column[pending]]
