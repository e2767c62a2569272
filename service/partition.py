"""The state of one partition group: the same-numbered partitions of every input topic.

A rule reading several streams needs its topics co-partitioned (same key, same partition
count), so that partition n of each topic holds the same keys; the group of partitions n is
then the unit of state, checkpointing and scale-out, and its watermark is the minimum of
its streams' watermarks.

Everything that decides outputs lives here and goes into the checkpoint: the string and key
pools, the engine state, the cooldown memory and the next offsets of each topic.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from nfa.batch import EventBatch, StringPool
from nfa.program import Program, Schema, used_columns
from nfa.results import EngineOutput
from service.decode import StreamDecoder

_LENGTH = struct.Struct(">I")


class MatchEngine(Protocol):
    def process(self, batch: EventBatch) -> EngineOutput: ...
    def advance_watermark(self, stream: int, watermark: int) -> EngineOutput: ...
    def snapshot(self) -> bytes: ...


class EngineKind(Protocol):
    """Creates an engine, or restores one from its snapshot (Engine, ReferenceEngine)."""

    def __call__(self, programs: Sequence[Program], pool: StringPool) -> MatchEngine: ...

    def restore(
        self, programs: Sequence[Program], pool: StringPool, data: bytes
    ) -> MatchEngine: ...


@dataclass
class PartitionState:
    number: int
    pool: StringPool
    keys: StringPool
    engine: MatchEngine
    decoders: dict[str, StreamDecoder]
    next_offsets: dict[str, int] = field(default_factory=dict)  # topic -> next offset
    cooldown_until: dict[tuple[int, int], int] = field(default_factory=dict)  # (rule, key) -> ms
    last_event_ms: dict[int, float] = field(default_factory=dict)  # stream -> wall clock
    dirty: bool = False  # processed input since the last checkpoint

    def encode(self) -> bytes:
        """Pools and cooldowns as JSON, then the engine's own snapshot bytes."""
        head = orjson.dumps(
            {
                "pool": self.pool.state(),
                "keys": self.keys.state(),
                "cooldown": [[r, k, t] for (r, k), t in sorted(self.cooldown_until.items())],
            }
        )
        return _LENGTH.pack(len(head)) + head + self.engine.snapshot()


def new_partition(
    number: int,
    schema: Schema,
    programs: Sequence[Program],
    inputs: Sequence[tuple[str, str]],
    max_bytes: int,
    engine_kind: EngineKind,
    snapshot: bytes | None = None,
    offsets: dict[str, int] | None = None,
) -> PartitionState:
    """A fresh partition state, or one restored from `PartitionState.encode()` bytes."""
    pool, keys = StringPool(), StringPool()
    cooldown: dict[tuple[int, int], int] = {}
    if snapshot is None:
        engine = engine_kind(programs, pool)
    else:
        (length,) = _LENGTH.unpack_from(snapshot)
        head = orjson.loads(snapshot[_LENGTH.size : _LENGTH.size + length])
        pool, keys = StringPool.from_state(head["pool"]), StringPool.from_state(head["keys"])
        cooldown = {(int(r), int(k)): int(t) for r, k, t in head["cooldown"]}
        engine = engine_kind.restore(programs, pool, snapshot[_LENGTH.size + length :])
    used = used_columns(programs)
    decoders = {
        topic: StreamDecoder(schema, stream, pool, keys, max_bytes, used)
        for topic, stream in inputs
    }
    return PartitionState(number, pool, keys, engine, decoders, dict(offsets or {}), cooldown)


class EngineKindOf:
    """Adapts an engine class with `restore(programs, pool, data)` to `EngineKind`."""

    def __init__(self, create: Callable[..., MatchEngine], restore: Callable[..., MatchEngine]):
        self._create = create
        self._restore = restore

    def __call__(self, programs: Sequence[Program], pool: StringPool) -> MatchEngine:
        return self._create(programs, pool)

    def restore(self, programs: Sequence[Program], pool: StringPool, data: bytes) -> MatchEngine:
        return self._restore(programs, pool, data)
