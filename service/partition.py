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

import numpy as np
import orjson

from nfa.batch import EventBatch, StringPool
from nfa.migrate import CarryOver, carry_over, rule_identity
from nfa.mixed import cep_snapshot_of, wrap_cep_snapshot
from nfa.program import Program, Schema, used_columns
from nfa.results import EngineOutput
from nfa.rowpattern_rule import SqlProgram
from nfa.string_refs import referenced_ids
from service.decode import StreamDecoder

_LENGTH = struct.Struct(">I")


class MatchEngine(Protocol):
    def process(self, batch: EventBatch) -> EngineOutput: ...
    def advance_watermark(self, stream: int, watermark: int) -> EngineOutput: ...
    def snapshot(self) -> bytes: ...


#: For the NFA programs and for the SQL programs: the old rule each continues (nfa.migrate).
RuleCarryOver = tuple[CarryOver, CarryOver]


class EngineKind(Protocol):
    """Creates an engine, or restores one from its snapshot (Engine, ReferenceEngine); with
    `keep`, from a snapshot taken with other rules (`nfa.migrate`)."""

    def __call__(self, programs: Sequence[Program], pool: StringPool) -> MatchEngine: ...

    def restore(
        self,
        programs: Sequence[Program],
        pool: StringPool,
        data: bytes,
        keep: RuleCarryOver | None = None,
    ) -> MatchEngine: ...


@dataclass(frozen=True)
class RuleSetIdentity:
    """The running rules as a checkpoint records them, so that a checkpoint taken with
    other rule versions can be restored rule by rule (`nfa.migrate`)."""

    names: tuple[str, ...]  # every rule in match.rule order: NFA programs, then SQL
    nfa: tuple[str, ...]  # rule_identity of each NFA program
    sql: tuple[str, ...]  # rule_identity of each SQL program

    @classmethod
    def of(cls, programs: Sequence[Program], sql_programs: Sequence[SqlProgram]) -> RuleSetIdentity:
        return cls(
            tuple([p.info.name for p in programs] + [p.info.name for p in sql_programs]),
            tuple(rule_identity(p) for p in programs),
            tuple(rule_identity(p) for p in sql_programs),
        )

    def as_json(self) -> dict[str, list[str]]:
        return {"names": list(self.names), "nfa": list(self.nfa), "sql": list(self.sql)}

    @classmethod
    def from_json(cls, doc: dict[str, list[str]]) -> RuleSetIdentity:
        return cls(tuple(doc["names"]), tuple(doc["nfa"]), tuple(doc["sql"]))

    def carry_over_from(self, old: RuleSetIdentity) -> RuleCarryOver:
        return carry_over(old.nfa, self.nfa), carry_over(old.sql, self.sql)


@dataclass
class PartitionState:
    number: int
    pool: StringPool
    keys: StringPool
    engine: MatchEngine
    decoders: dict[str, StreamDecoder]
    rules: RuleSetIdentity
    next_offsets: dict[str, int] = field(default_factory=dict)  # topic -> next offset
    cooldown_until: dict[tuple[int, int], int] = field(default_factory=dict)  # (rule, key) -> ms
    last_event_ms: dict[int, float] = field(default_factory=dict)  # stream -> wall clock
    dirty: bool = False  # processed input since the last checkpoint
    compacted: tuple[int, int] = (0, 0)  # live pool and key entries after the last compaction

    def compact_pools(self, at: int) -> tuple[int, int]:
        """Free the string and key ids no state refers to, once the pool or the key pool
        holds `at` entries (0: never) and twice as many as after its last compaction;
        returns how many of each were freed.

        Rules that read a field unique per event (an authorisation id) or keys that come
        and go would otherwise grow the pools, memory and every checkpoint with history.
        Ids stay stable (`StringPool.release`), so no state needs rewriting; the decoders
        forget their cached ids, which may now stand for other strings.
        """
        grown = any(
            pool.live >= max(at, 2 * last)
            for pool, last in zip((self.pool, self.keys), self.compacted, strict=True)
        )
        found = referenced_ids(self.engine) if at and grown else None
        if found is None:
            return 0, 0
        strings, keys = found
        cooling = np.fromiter((key for _, key in self.cooldown_until), np.int64)
        freed = self.pool.release(strings), self.keys.release(np.concatenate([keys, cooling]))
        for decoder in self.decoders.values():
            decoder.forget_strings()
        self.compacted = (self.pool.live, self.keys.live)
        return freed

    def encode(self) -> bytes:
        """Pools, cooldowns (by rule name) and the rules' identities as JSON, then the
        engine's own snapshot bytes."""
        names = self.rules.names
        head = orjson.dumps(
            {
                # not "pool"/"keys" as before releases: older code must not misread
                # a run of released ids (an int) as one string
                "string_pool": self.pool.state(),
                "key_pool": self.keys.state(),
                "rules": self.rules.as_json(),
                "cooldown": [[names[r], k, t] for (r, k), t in sorted(self.cooldown_until.items())],
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
    rules: RuleSetIdentity,
    snapshot: bytes | None = None,
    offsets: dict[str, int] | None = None,
    sql_programs: Sequence[SqlProgram] = (),
) -> PartitionState:
    """A fresh partition state, or one restored from `PartitionState.encode()` bytes.

    A snapshot taken with other rules (another version of some rule, rules added or
    removed: a hot reload, or a restart with changed rule files) is restored rule by rule:
    a rule whose identity (`nfa.migrate.rule_identity`) is unchanged continues its partial
    matches and cooldowns, any other rule starts empty. `sql_programs` are the rules on
    the row-pattern engine: every field of their streams is decoded.
    """
    pool, keys = StringPool(), StringPool()
    cooldown: dict[tuple[int, int], int] = {}
    if snapshot is None:
        engine = engine_kind(programs, pool)
    else:
        (length,) = _LENGTH.unpack_from(snapshot)
        head = orjson.loads(snapshot[_LENGTH.size : _LENGTH.size + length])
        pool = StringPool.from_state(head.get("string_pool", head.get("pool")))
        keys = StringPool.from_state(head.get("key_pool", head.get("keys")))
        data = snapshot[_LENGTH.size + length :]
        old = RuleSetIdentity.from_json(head["rules"]) if "rules" in head else rules
        if old == rules:
            engine = engine_kind.restore(programs, pool, data)
        else:
            # With SQL rules the engine is a mixed one, whose snapshot wraps the CEP part.
            if rules.sql and not old.sql:
                data = wrap_cep_snapshot(data)
            elif old.sql and not rules.sql:
                data = cep_snapshot_of(data)
            if data or rules.sql:
                engine = engine_kind.restore(programs, pool, data, rules.carry_over_from(old))
            else:  # only SQL rules before, none now: nothing carries over
                engine = engine_kind(programs, pool)
        cooldown = _cooldowns(head["cooldown"], old, rules)
    # the NFA programs' columns; every column of a stream a row-pattern SQL rule reads
    sql_streams = {p.stream for p in sql_programs}
    used = used_columns(programs) | {
        c for c, column in enumerate(schema.columns) if column.stream in sql_streams
    }
    decoders = {
        topic: StreamDecoder(schema, stream, pool, keys, max_bytes, used)
        for topic, stream in inputs
    }
    return PartitionState(
        number, pool, keys, engine, decoders, rules, dict(offsets or {}), cooldown
    )


def _cooldowns(
    entries: list[list[object]], old: RuleSetIdentity, rules: RuleSetIdentity
) -> dict[tuple[int, int], int]:
    """Cooldowns of rules that continue (by name; checkpoints before names: by index)."""
    continuing = set(rules.names)
    if old != rules:  # a changed rule's cooldowns went with its partial matches
        keep_nfa, keep_sql = rules.carry_over_from(old)
        continuing = {rules.names[i] for i, o in enumerate([*keep_nfa, *keep_sql]) if o is not None}
    index = {name: i for i, name in enumerate(rules.names)}
    out: dict[tuple[int, int], int] = {}
    for rule, key, until in entries:
        name = rule if isinstance(rule, str) else old.names[int(str(rule))]
        if name in continuing and name in index:
            out[(index[name], int(str(key)))] = int(str(until))
    return out


class EngineKindOf:
    """Adapts an engine class with `restore(programs, pool, data)` to `EngineKind`."""

    def __init__(self, create: Callable[..., MatchEngine], restore: Callable[..., MatchEngine]):
        self._create = create
        self._restore = restore

    def __call__(self, programs: Sequence[Program], pool: StringPool) -> MatchEngine:
        return self._create(programs, pool)

    def restore(
        self,
        programs: Sequence[Program],
        pool: StringPool,
        data: bytes,
        keep: RuleCarryOver | None = None,
    ) -> MatchEngine:
        if keep is None:
            return self._restore(programs, pool, data)
        return self._restore(programs, pool, data, keep[0])
