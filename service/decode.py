"""Decode a batch of JSON Kafka values of one stream into the engine's columns.

The batch is parsed with orjson and then filled column by column: one pass per field over
the parsed values, not one Python dict of columns per event. A value that is not JSON,
breaks the stream's schema or is too large does not stop the batch: it comes back as a
`Rejected` entry with the reason, for the dead-letter topic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import orjson

from nfa.batch import EventBatch, StringPool
from nfa.expr import Type
from nfa.program import Schema


@dataclass(frozen=True, slots=True)
class Rejected:
    index: int  # position in the decoded batch's input
    reason: str


def parse_timestamp(value: object) -> int | None:
    """Epoch milliseconds from an int/float (ms) or an ISO-8601 string; None if invalid."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
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


class StreamDecoder:
    """Decodes one stream's JSON values; shares string and key pools with the engine."""

    def __init__(
        self, schema: Schema, stream: str, pool: StringPool, keys: StringPool, max_bytes: int
    ):
        self.schema = schema
        self.stream_index = schema.stream_index(stream)
        self.stream = schema.streams[self.stream_index]
        self.columns = [
            (i, c) for i, c in enumerate(schema.columns) if c.stream == self.stream_index
        ]
        self.pool = pool
        self.keys = keys
        self.max_bytes = max_bytes

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
                    target[row] = self.pool.intern(field_value)  # type: ignore[arg-type]
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
