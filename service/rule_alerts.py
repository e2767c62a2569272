"""Alerts and engines for rule sets that hold SQL rules as well as DSL rules.

Where the service runs SQL rules (`CompiledRules.sql_programs`), it builds an
`nfa.mixed.MixedEngine`, whose output rule indices run over the NFA programs and then the
SQL programs; `rule_alert` turns a match of either kind into the same alert document as
`service.alerts.alert_document` (a SQL match's `fields` are its MEASURES, its events' stages
are pattern variables). Without SQL rules nothing here is used, so nothing changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from nfa.batch import StringPool
from nfa.migrate import CarryOver
from nfa.mixed import CepFactory, CepRestore, MixedEngine
from nfa.program import Program
from nfa.reference import EngineConfig
from nfa.results import Match
from nfa.rowpattern_rule import SqlProgram
from service.alerts import EventIdOf, alert_document

RuleProgram = Program | SqlProgram


def rule_alert(match: Match, program: RuleProgram, key: str, event_id: EventIdOf) -> dict[str, Any]:
    """The alert document of a match of a DSL or a SQL rule."""
    # `alert_document` reads `info` and `stage_names` only, which a SqlProgram has too.
    return alert_document(match, cast(Program, program), key, event_id)


class MixedKind:
    """An `service.partition.EngineKind` that builds mixed engines: the given CEP engine
    class for the NFA programs passed in, and the SQL programs fixed here."""

    def __init__(
        self,
        sql_programs: Sequence[SqlProgram],
        create: CepFactory,
        restore: CepRestore,
        config: EngineConfig,
        jit: bool = True,
    ):
        self.sql_programs = list(sql_programs)
        self.jit = jit  # SQL rules on kernels where they apply (else all in Python)
        self._create = create
        self._restore = restore
        self.config = config

    def __call__(self, programs: Sequence[Program], pool: StringPool) -> MixedEngine:
        return MixedEngine.create(
            programs, self.sql_programs, pool, self._create, self.config, self.jit
        )

    def restore(
        self,
        programs: Sequence[Program],
        pool: StringPool,
        data: bytes,
        keep: tuple[CarryOver, CarryOver] | None = None,
    ) -> MixedEngine:
        return MixedEngine.restore(
            programs,
            self.sql_programs,
            pool,
            data,
            self._restore,
            self.config,
            keep,
            self._create,
            self.jit,
        )
