"""One engine over DSL and SQL rules: a CEP engine for NFA programs, the streaming row
pattern engine for SQL programs, behind the common engine API.

Rule indices of the outputs are global: the NFA programs first (as the CEP engine numbers
them), then the SQL programs (offset by the number of NFA programs); the alert builder
(`service.rule_alerts`) indexes the same concatenation. Both engines see every batch and
keep the same per-stream watermarks, so a late event is reported once, by the CEP engine
when there is one. Either part may be absent (no rule of that kind).

The snapshot is the two engines' snapshots, each prefixed with its length (0: absent).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Protocol

from nfa.batch import EventBatch, StringPool
from nfa.program import Program
from nfa.reference import EngineConfig
from nfa.results import EngineOutput
from nfa.rowpattern_rule import SqlProgram
from nfa.rowpattern_stream import RowPatternEngine

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

    def __init__(self, cep: CepEngine | None, sql: RowPatternEngine | None, n_programs: int):
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
    ) -> MixedEngine:
        config = config or EngineConfig()
        cep = factory(programs, pool, config) if programs else None
        sql = RowPatternEngine(sql_programs, pool, config) if sql_programs else None
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
    ) -> MixedEngine:
        config = config or EngineConfig()
        (length,) = _LENGTH.unpack_from(data)
        cep_data = data[_LENGTH.size : _LENGTH.size + length]
        rest = data[_LENGTH.size + length :]
        (sql_length,) = _LENGTH.unpack_from(rest)
        sql_data = rest[_LENGTH.size : _LENGTH.size + sql_length]
        cep = restore(programs, pool, cep_data, config) if programs else None
        sql = (
            RowPatternEngine.restore(sql_programs, pool, sql_data, config) if sql_programs else None
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
