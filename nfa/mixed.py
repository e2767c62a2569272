"""One engine over DSL and SQL rules: a CEP engine for NFA programs, `nfa.sql_engine` for
SQL programs (on kernels where they apply), behind the common engine API.

Rule indices of the outputs are global: the NFA programs first (as the CEP engine numbers
them), then the SQL programs (offset by the number of NFA programs); the alert builder
(`service.rule_alerts`) indexes the same concatenation. Both engines see every batch and
keep the same per-stream watermarks, so a late event is reported once, by the CEP engine
when there is one. Either part may be absent (no rule of that kind).

The snapshot is the two engines' snapshots, each prefixed with its length (0: absent).
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from nfa.batch import EventBatch, StringPool
from nfa.program import Program
from nfa.reference import EngineConfig
from nfa.results import EngineOutput
from nfa.rowpattern_rule import SqlProgram
from nfa.sql_engine import SqlEngine

if TYPE_CHECKING:
    from nfa.migrate import CarryOver

_LENGTH = struct.Struct(">Q")


class CepEngine(Protocol):
    """What the mixed engine needs of `nfa.engine.Engine` or `ReferenceEngine`."""

    def process(self, batch: EventBatch) -> EngineOutput: ...
    def advance_watermark(self, stream: int, watermark: int) -> EngineOutput: ...
    def finish(self) -> EngineOutput: ...
    def snapshot(self) -> bytes: ...


#: Builds a CEP engine: (programs, pool, config) -> engine.
CepFactory = Callable[[Sequence[Program], StringPool, EngineConfig], CepEngine]
#: Restores a CEP engine: (programs, pool, data, config) -> engine.
CepRestore = Callable[[Sequence[Program], StringPool, bytes, EngineConfig], CepEngine]


class MixedEngine:
    """NFA programs in `cep`, SQL programs in `sql`; outputs merged, rules renumbered."""

    def __init__(self, cep: CepEngine | None, sql: SqlEngine | None, n_programs: int):
        self.cep = cep
        self.sql = sql
        self.n_programs = n_programs  # NFA programs: the SQL rule indices start here

    @classmethod
    def create(
        cls,
        programs: Sequence[Program],
        sql_programs: Sequence[SqlProgram],
        pool: StringPool,
        factory: CepFactory,
        config: EngineConfig | None = None,
        jit: bool = True,
    ) -> MixedEngine:
        """`jit` False runs every SQL rule on the Python row-pattern engine (rule tests)."""
        config = config or EngineConfig()
        cep = factory(programs, pool, config) if programs else None
        sql = SqlEngine(sql_programs, pool, config, jit) if sql_programs else None
        return cls(cep, sql, len(programs))

    @classmethod
    def restore(
        cls,
        programs: Sequence[Program],
        sql_programs: Sequence[SqlProgram],
        pool: StringPool,
        data: bytes,
        restore: CepRestore,
        config: EngineConfig | None = None,
        keep: tuple[CarryOver, CarryOver] | None = None,
        create: CepFactory | None = None,
        jit: bool = True,
    ) -> MixedEngine:
        """From `snapshot()` bytes; with `keep` (for the NFA programs, for the SQL programs;
        see `nfa.migrate`), from a snapshot taken with other rules."""
        config = config or EngineConfig()
        (length,) = _LENGTH.unpack_from(data)
        cep_data = data[_LENGTH.size : _LENGTH.size + length]
        rest = data[_LENGTH.size + length :]
        (sql_length,) = _LENGTH.unpack_from(rest)
        sql_data = rest[_LENGTH.size : _LENGTH.size + sql_length]
        keep_cep, keep_sql = keep if keep is not None else (None, None)
        cep = _restore_part(programs, pool, cep_data, config, keep_cep, restore, create)
        sql = _restore_part(
            sql_programs,
            pool,
            sql_data,
            config,
            keep_sql,
            functools.partial(SqlEngine.restore, jit=jit),
            functools.partial(SqlEngine, jit=jit),
        )
        return cls(cep, sql, len(programs))

    def process(self, batch: EventBatch) -> EngineOutput:
        return self._merge(
            self.cep.process(batch) if self.cep else None,
            self.sql.process(batch) if self.sql else None,
        )

    def advance_watermark(self, stream: int, watermark: int) -> EngineOutput:
        return self._merge(
            self.cep.advance_watermark(stream, watermark) if self.cep else None,
            self.sql.advance_watermark(stream, watermark) if self.sql else None,
        )

    def finish(self) -> EngineOutput:
        return self._merge(
            self.cep.finish() if self.cep else None,
            self.sql.finish() if self.sql else None,
        )

    def snapshot(self) -> bytes:
        cep = self.cep.snapshot() if self.cep else b""
        sql = self.sql.snapshot() if self.sql else b""
        return _LENGTH.pack(len(cep)) + cep + _LENGTH.pack(len(sql)) + sql

    def _merge(self, cep: EngineOutput | None, sql: EngineOutput | None) -> EngineOutput:
        out = EngineOutput()
        if cep is not None:
            out.extend(cep)
        if sql is not None:
            offset = self.n_programs
            out.matches.extend(replace(m, rule=m.rule + offset) for m in sql.matches)
            if cep is None:
                out.late.extend(sql.late)
        return out


def _restore_part(
    programs: Sequence[Any],
    pool: StringPool,
    data: bytes,
    config: EngineConfig,
    keep: CarryOver | None,
    restore: Callable[..., Any],
    create: Callable[..., Any] | None,
) -> Any:
    """One side of a mixed engine; with `keep`, migrated from another rule set, or new
    when the snapshot has no such side (it had no rule of that kind)."""
    if not programs:
        return None
    if keep is None:
        return restore(programs, pool, data, config)
    if not data:
        if create is None:
            raise ValueError("a new side of a mixed engine needs its factory")
        return create(programs, pool, config)
    return restore(programs, pool, data, config, keep)


def wrap_cep_snapshot(cep_data: bytes) -> bytes:
    """A CEP engine's snapshot as a mixed engine's (no SQL part): for rule sets that gained
    their first SQL rule."""
    return _LENGTH.pack(len(cep_data)) + cep_data + _LENGTH.pack(0)


def cep_snapshot_of(data: bytes) -> bytes:
    """The CEP part of a mixed engine's snapshot (empty when it had no NFA programs): for
    rule sets that lost their last SQL rule."""
    (length,) = _LENGTH.unpack_from(data)
    return data[_LENGTH.size : _LENGTH.size + length]
