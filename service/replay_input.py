"""Read event files (JSON lines, CSV, Parquet) into typed records and engine batches.

`cep replay` and `cep trace` run rules over history exported from the input topics. Each
row names its stream (a `stream` field or column) and carries that stream's fields; values
are checked and converted by the schema's field types (CSV cells are text; timestamps may
be epoch milliseconds or ISO-8601 with a zone), so a bad row is reported with its file and
line and skipped, never fed to an engine half-typed. Rows are read in file order: arrival
order is part of what a replay reproduces (out-of-order and late events included).

An event's id (what alerts name) is its `event_id` field when present, else `file:line`.
"""

from __future__ import annotations

import csv
import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from nfa.batch import EventBatch, StringPool, batch_from_records
from nfa.expr import Type
from nfa.program import Schema, StreamSchema
from service.decode import parse_timestamp

BATCH_SIZE = 10_000
MAX_SAMPLES = 5
JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")
CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")
_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n"}


class InputError(ValueError):
    """An input file that cannot be read at all (unknown format, missing pyarrow)."""


@dataclass(frozen=True, slots=True)
class InputEvent:
    """One accepted row: its stream, its schema fields (typed; timestamps in ms) and id."""

    stream: str
    values: dict[str, object]
    event_id: str

    def time(self, schema: Schema) -> int:
        """The event time (the stream's time field), as the engines will read it."""
        stream = schema.streams[schema.stream_index(self.stream)]
        return int(self.values[stream.time_field]) if stream.time_field else 0  # type: ignore[call-overload]


@dataclass
class EventReader:
    """Reads files in order; counts rejected rows and keeps the first few reasons."""

    schema: Schema
    rejected: int = 0
    samples: list[str] = field(default_factory=list)

    def read(self, paths: Iterable[str | Path]) -> Iterator[InputEvent]:
        streams = {s.name: s for s in self.schema.streams}
        for path in paths:
            for where, row, text in _rows(Path(path)):
                event = self._accept(where, row, text, streams)
                if event is not None:
                    yield event

    def _reject(self, where: str, reason: str) -> None:
        self.rejected += 1
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append(f"{where}: {reason}")

    def _accept(
        self,
        where: str,
        row: Mapping[str, Any] | str,
        text: bool,
        streams: Mapping[str, StreamSchema],
    ) -> InputEvent | None:
        if isinstance(row, str):  # a line that did not parse
            self._reject(where, row)
            return None
        name = row.get("stream")
        stream = streams.get(str(name)) if name is not None else None
        if stream is None:
            self._reject(where, "no `stream` field" if name is None else f"unknown stream {name!r}")
            return None
        if stream.time_field is None:
            self._reject(where, f"stream {stream.name} has no time field; replay needs event time")
            return None
        values: dict[str, object] = {}
        for field_name, type_ in stream.fields:
            raw = row.get(field_name)
            if raw is None or (text and raw == ""):
                continue
            value = convert(raw, type_, text)
            if value is None:
                self._reject(where, f"field `{field_name}`: {raw!r} is not a valid {type_.value}")
                return None
            values[field_name] = value
        for required in (stream.key, stream.time_field):
            if required not in values:
                self._reject(where, f"missing field `{required}`")
                return None
        raw_id = row.get("event_id")
        event_id = str(raw_id) if raw_id not in (None, "") else where
        return InputEvent(stream.name, values, event_id)


def convert(raw: object, type_: Type, text: bool) -> object | None:
    """`raw` as a value of `type_`, or None when it is not one (JSON is strict, CSV is text)."""
    if isinstance(raw, datetime):  # Parquet timestamps; naive ones are UTC
        stamp = raw if raw.tzinfo is not None else raw.replace(tzinfo=UTC)
        return int(stamp.timestamp() * 1000) if type_ is Type.TIMESTAMP else None
    if text and isinstance(raw, str):
        return _from_text(raw.strip(), type_)
    if type_ is Type.TIMESTAMP:
        return parse_timestamp(raw)
    if isinstance(raw, bool):
        return raw if type_ is Type.BOOL else None
    if type_ is Type.FLOAT:
        return float(raw) if isinstance(raw, int | float) else None
    if type_ is Type.INT:
        return raw if isinstance(raw, int) else None
    if type_ is Type.STRING:
        return raw if isinstance(raw, str) else None
    return None


def _from_text(raw: str, type_: Type) -> object | None:
    try:
        if type_ is Type.FLOAT:
            return float(raw)
        if type_ is Type.INT:
            return int(raw)
        if type_ is Type.TIMESTAMP:
            return int(raw) if raw.lstrip("-").isdigit() else parse_timestamp(raw)
    except ValueError:
        return None
    if type_ is Type.BOOL:
        lowered = raw.lower()
        return True if lowered in _TRUE else False if lowered in _FALSE else None
    return raw


def check_files(paths: Iterable[str | Path]) -> None:
    """Fail early (before an engine compiles) on a missing file or an unknown format."""
    suffixes = JSON_SUFFIXES + CSV_SUFFIXES + PARQUET_SUFFIXES
    for raw in paths:
        path = Path(raw)
        if path.suffix.lower() not in suffixes:
            raise InputError(f"{path}: unknown event file format (use .jsonl, .csv or .parquet)")
        if not path.is_file():
            raise InputError(f"{path}: no such file")


def _rows(path: Path) -> Iterator[tuple[str, Mapping[str, Any] | str, bool]]:
    """(where, row or a reason it is unreadable, whether values are text) per row."""
    suffix = path.suffix.lower()
    if suffix in JSON_SUFFIXES:
        yield from _json_rows(path)
    elif suffix in CSV_SUFFIXES:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            for row in reader:
                yield f"{path}:{reader.line_num}", row, True
    elif suffix in PARQUET_SUFFIXES:
        yield from _parquet_rows(path)
    else:
        raise InputError(f"{path}: unknown event file format (use .jsonl, .csv or .parquet)")


def _json_rows(path: Path) -> Iterator[tuple[str, Mapping[str, Any] | str, bool]]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield where, f"invalid JSON: {exc}", False
                continue
            if isinstance(doc, dict):
                yield where, doc, False
            else:
                yield where, f"expected a JSON object, got {type(doc).__name__}", False


def _parquet_rows(path: Path) -> Iterator[tuple[str, Mapping[str, Any] | str, bool]]:
    try:
        parquet: Any = importlib.import_module("pyarrow.parquet")
    except ImportError:
        raise InputError(
            f"{path}: reading Parquet needs pyarrow; install it with `pip install pyarrow`"
        ) from None
    number = 0
    for batch in parquet.ParquetFile(path).iter_batches(batch_size=BATCH_SIZE):
        for row in batch.to_pylist():
            number += 1
            yield f"{path}:{number}", row, False


def batches(
    events: Iterable[InputEvent],
    schema: Schema,
    pool: StringPool,
    keys: StringPool,
    size: int = BATCH_SIZE,
    split: Callable[[InputEvent], bool] | None = None,
) -> Iterator[tuple[EventBatch, list[InputEvent]]]:
    """Engine batches of up to `size` events; event i of the whole input gets seq i.

    `split` starts a new batch at the events it selects, so everything that arrived before
    them is released before they arrive (the trace uses it to keep arrival order readable;
    the matching is the same for any batching).
    """
    chunk: list[InputEvent] = []
    first = 0
    for event in events:
        if chunk and (len(chunk) >= size or (split is not None and split(event))):
            yield batch_from_records(schema, _pairs(chunk), pool, keys, first), chunk
            first += len(chunk)
            chunk = []
        chunk.append(event)
    if chunk:
        yield batch_from_records(schema, _pairs(chunk), pool, keys, first), chunk


def _pairs(chunk: list[InputEvent]) -> list[tuple[str, Mapping[str, object]]]:
    return [(e.stream, e.values) for e in chunk]
