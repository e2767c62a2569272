"""Carrying partial matches across a change of the rule set (hot reload, old checkpoints).

A rule's partial-match state is only meaningful to the automaton and the stored-event
layout that produced it. `rule_identity` hashes exactly that — the rule's name, its
automaton, window and skip strategy (`Program.fingerprint`), and its outputs (the per-rule
layout stores the columns they read) — and leaves out metadata such as version, severity
or description. `carry_over` maps each rule of a new rule set to the rule of the old set
whose state it may continue, or to None: that rule starts with no partial matches.

So an edit that changes only metadata keeps the partial matches; any change to what a
rule matches or emits starts it empty (the old version's partial matches are dropped, and
the caller counts them). Rules keep their identity across renumbering (rules added or
removed before them).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence

from nfa.program import Program
from nfa.rowpattern_rule import SqlProgram

#: For each rule of the new set, the index of the old rule it continues, or None.
CarryOver = list[int | None]


def rule_identity(program: Program | SqlProgram) -> str:
    """What the rule's state depends on, as a short stable hash (metadata excluded)."""
    if isinstance(program, Program):
        payload = repr(
            ("nfa", program.info.name, program.fingerprint(), program.emit, program.on_timeout)
        )
    else:
        # A SQL program is plain frozen data (tuples, enums, numbers, strings): its repr
        # depends only on values. Its metadata is blanked out.
        payload = repr(("sql", program.info.name, dataclasses.replace(program, info=None)))  # type: ignore[arg-type]
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def carry_over(old: Sequence[str], new: Sequence[str]) -> CarryOver:
    """For each identity in `new`, the index of the same identity in `old`, or None."""
    where = {identity: index for index, identity in enumerate(old)}
    return [where.get(identity) for identity in new]


def renumbering(keep: CarryOver) -> dict[int, int]:
    """Old rule index -> new rule index, for the rules that continue."""
    return {old: new for new, old in enumerate(keep) if old is not None}


def dropped_rules(old: Sequence[str], keep: CarryOver) -> list[int]:
    """Indices of old rules that no new rule continues: their partial matches are lost."""
    kept = {index for index in keep if index is not None}
    return [index for index in range(len(old)) if index not in kept]
