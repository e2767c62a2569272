"""Checkpoints of each partition group's engine state, stored with the input offsets they cover.

Kafka's committed offsets are the truth: on assignment the service reads them and restores
the checkpoint whose offsets equal them. A checkpoint is written *before* the offsets are
committed, so after a crash between the two the newest checkpoint is ahead of Kafka and an
older one (the store keeps the last few) matches instead.

Stores: `RedisCheckpointStore` for the daemon, `MemoryCheckpointStore` (its in-memory twin)
for unit tests. Both keep at most `keep` checkpoints per (group, partition).
"""

from __future__ import annotations

import struct
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

import orjson
import redis

FORMAT_VERSION = 1
_HEADER = struct.Struct(">4sHI")  # magic, format version, length of the JSON offsets part
_MAGIC = b"CEPc"

Offsets = Mapping[str, int]  # topic -> next offset to consume, for one partition number


@dataclass(frozen=True)
class Checkpoint:
    offsets: dict[str, int]
    state: bytes

    def encode(self) -> bytes:
        head = orjson.dumps(self.offsets, option=orjson.OPT_SORT_KEYS)
        return _HEADER.pack(_MAGIC, FORMAT_VERSION, len(head)) + head + self.state

    @classmethod
    def decode(cls, data: bytes) -> Checkpoint:
        magic, version, length = _HEADER.unpack_from(data)
        if magic != _MAGIC or version != FORMAT_VERSION:
            raise ValueError(
                f"not a checkpoint of format {FORMAT_VERSION} (magic {magic!r}, version {version})"
            )
        start = _HEADER.size
        offsets = orjson.loads(data[start : start + length])
        return cls({str(k): int(v) for k, v in offsets.items()}, data[start + length :])


class CheckpointStore(ABC):
    def __init__(self, keep: int = 3):
        self.keep = keep

    @abstractmethod
    def save(self, group: str, partition: int, checkpoint: Checkpoint) -> None:
        """Add a checkpoint as the newest, dropping the oldest beyond `keep`."""

    @abstractmethod
    def load_all(self, group: str, partition: int) -> list[Checkpoint]:
        """Every kept checkpoint, newest first."""

    def find(self, group: str, partition: int, committed: Offsets) -> Checkpoint | None:
        """The checkpoint covering exactly the committed offsets, if one is kept."""
        wanted = {t: o for t, o in committed.items() if o >= 0}
        for checkpoint in self.load_all(group, partition):
            if {t: o for t, o in checkpoint.offsets.items() if o >= 0} == wanted:
                return checkpoint
        return None


class MemoryCheckpointStore(CheckpointStore):
    def __init__(self, keep: int = 3):
        super().__init__(keep)
        self._data: dict[tuple[str, int], list[bytes]] = {}

    def save(self, group: str, partition: int, checkpoint: Checkpoint) -> None:
        kept = self._data.setdefault((group, partition), [])
        kept.insert(0, checkpoint.encode())
        del kept[self.keep :]

    def load_all(self, group: str, partition: int) -> list[Checkpoint]:
        return [Checkpoint.decode(d) for d in self._data.get((group, partition), [])]


class RedisCheckpointStore(CheckpointStore):
    """A Redis list per (group, partition), newest first, trimmed to `keep` in one MULTI."""

    def __init__(self, client: redis.Redis, keep: int = 3, prefix: str = "cep"):
        super().__init__(keep)
        self.client = client
        self.prefix = prefix

    def _key(self, group: str, partition: int) -> str:
        return f"{self.prefix}:{group}:checkpoints:{partition}"

    def save(self, group: str, partition: int, checkpoint: Checkpoint) -> None:
        key = self._key(group, partition)
        with self.client.pipeline(transaction=True) as pipe:
            pipe.lpush(key, checkpoint.encode())
            pipe.ltrim(key, 0, self.keep - 1)
            pipe.execute()

    def load_all(self, group: str, partition: int) -> list[Checkpoint]:
        raw: list[bytes] = self.client.lrange(self._key(group, partition), 0, -1)  # type: ignore[assignment]
        return [Checkpoint.decode(item) for item in raw]
