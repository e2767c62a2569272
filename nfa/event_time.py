"""Event time on whole batches: lateness per stream and the buffer of waiting events.

Shared by the engines that run kernels over released events (`nfa.engine.Engine` and
`nfa.rowpattern_jit.JitRowPatternEngine`); the same rules as the reference engine's
event-by-event loop (`nfa.reference`): per stream a watermark (largest time seen minus the
stream's out-of-orderness, never going backwards), an event at or below its stream's
watermark is late; others wait, in arrival order, until the engine watermark reaches them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from nfa.batch import EventBatch
from nfa.program import Schema
from nfa.reference import END_OF_TIME, NO_TIME
from nfa.results import EngineCounters, EngineOutput, LateEvent

I64 = npt.NDArray[np.int64]


class WatermarkApi:
    """`advance_watermark` and `finish` of the engines that release waiting events with
    `_release(watermark, out, ended)` (the row-pattern engines, in Python and on kernels)."""

    schema: Schema
    stream_watermark: dict[int, int]

    def _release(self, watermark: int, out: EngineOutput, ended: bool = False) -> None:
        raise NotImplementedError

    def advance_watermark(self, stream: int, watermark: int) -> EngineOutput:
        """Move one stream's watermark forward (idleness); never backwards."""
        out = EngineOutput()
        if watermark > self.stream_watermark.get(stream, NO_TIME):
            self.stream_watermark[stream] = watermark
        self._release(min(self.stream_watermark.values(), default=NO_TIME), out)
        return out

    def finish(self) -> EngineOutput:
        """End of bounded input: release everything; the end decides every match."""
        out = EngineOutput()
        for stream in range(len(self.schema.streams)):
            self.stream_watermark[stream] = END_OF_TIME
        self._release(END_OF_TIME, out, ended=True)
        return out


def kernel_columns(batch: EventBatch) -> tuple[npt.NDArray[Any], ...]:
    """The batch's arrays as the kernels take them (contiguous, fixed dtypes): floats, ints,
    valid, ts, stream, key, seq."""
    c = np.ascontiguousarray
    return (
        c(batch.floats, np.float64),
        c(batch.ints, np.int64),
        c(batch.valid, np.bool_),
        c(batch.ts, np.int64),
        c(batch.stream, np.int8),
        c(batch.key, np.int64),
        c(batch.seq, np.int64),
    )


def split_late(
    schema: Schema,
    batch: EventBatch,
    stream_max: dict[int, int],
    stream_watermark: dict[int, int],
    counters: EngineCounters,
    out: EngineOutput,
) -> I64:
    """Indices of the batch's events that are not late; late ones go to `out.late`.

    Equivalent to the reference's event-by-event update of each stream's watermark:
    until a stream's first on-time event of the batch the old watermark applies, after
    it the running maximum of the stream's times minus its out-of-orderness.
    """
    late_all = np.zeros(len(batch), np.bool_)
    own_all = np.zeros(len(batch), np.int64)
    for s, stream in enumerate(schema.streams):
        idx = np.flatnonzero(batch.stream == s)
        if not len(idx):
            continue
        ts = batch.ts[idx]
        w0 = stream_watermark.get(s, NO_TIME)
        m0 = stream_max.get(s, NO_TIME)
        above = ts > w0
        if not above.any():
            late_all[idx] = True
            own_all[idx] = w0
            continue
        first = int(np.argmax(above))
        prior = np.maximum.accumulate(np.concatenate(([m0], ts[:-1])))
        prior = np.maximum(prior, m0)
        own = np.maximum(prior - stream.out_of_order_ms, w0)  # never backwards (idleness)
        own[: first + 1] = w0
        late = ts <= own
        late_all[idx] = late
        own_all[idx] = own
        stream_max[s] = max(m0, int(ts[~late].max()))
        stream_watermark[s] = max(w0, stream_max[s] - stream.out_of_order_ms)
    late_idx = np.flatnonzero(late_all)
    counters.events_late += len(late_idx)
    for i in late_idx.tolist():
        out.late.append(
            LateEvent(
                int(batch.stream[i]),
                int(batch.key[i]),
                int(batch.seq[i]),
                int(batch.ts[i]),
                int(own_all[i]),
            )
        )
    return np.flatnonzero(~late_all)


def buffer_on_time(schema: Schema, buffer: EventBatch, batch: EventBatch, keep: I64) -> EventBatch:
    """The buffer with the batch's on-time events (`keep`) appended; the batch itself when
    the buffer is empty and nothing is late (no copy: see `own_buffer`)."""
    n = len(batch)
    if len(keep) == n and not len(buffer):
        return batch
    if len(keep) == n:
        return EventBatch.concat(schema, [buffer, batch])
    if len(keep):
        return EventBatch.concat(schema, [buffer, batch.take(keep)])
    return buffer


def own_buffer(buffer: EventBatch, batch: EventBatch) -> EventBatch:
    """Events that stay buffered must not be the caller's arrays: copy them if they are."""
    return batch.take(np.arange(len(batch))) if buffer is batch else buffer


def take_released(
    schema: Schema, buffer: EventBatch, watermark: int
) -> tuple[EventBatch | None, EventBatch]:
    """(the events at or below `watermark` in (time, arrival) order or None, the rest)."""
    if not len(buffer):
        return None, buffer
    ts = buffer.ts
    if ts[-1] <= watermark and bool(np.all(ts[1:] >= ts[:-1])):
        return buffer, EventBatch.empty(schema)  # all ready, in order: no copy
    ready = np.flatnonzero(ts <= watermark)
    if not len(ready):
        return None, buffer
    order = ready[np.argsort(ts[ready], kind="stable")]
    return buffer.take(order), buffer.take(np.flatnonzero(ts > watermark))
