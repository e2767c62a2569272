"""Programs turned into what the kernels take: `Prog` arrays and generated modules.

`RuleSet` splits every program's atoms into pure ones (read no stage; evaluated for all
rules at once, deduplicated, by the generated `pure_eval`) and iterative ones (generated
into the program's own module), and flattens each program into `nfa.kernel.Prog`, with
its slot layout (`nfa.kernel_layout`) and decision tables (`nfa.engine_decide`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from nfa import (
    codegen,
    kernel,
    kernel_bounds,
    kernel_intrinsics,
    kernel_keys,
    kernel_layout,
    kernel_runs,
    kernel_skip,
    kernel_store,
)
from nfa import expr as ir
from nfa.batch import StringPool
from nfa.engine_decide import decision_tables
from nfa.kernel import Prog
from nfa.kernel_cache import drop_when_changed
from nfa.kernel_layout import Layout, layout
from nfa.program import Action, Aggregate, Program
from nfa.string_tables import StringTables

# The static kernels inline each other's helpers: recompile them all when any of their
# sources changed (generated rule modules are keyed by these sources already, `codegen`).
_KERNELS = (
    kernel,
    kernel_bounds,
    kernel_keys,
    kernel_layout,
    kernel_runs,
    kernel_skip,
    kernel_store,
)
drop_when_changed("nfa_kernels", _KERNELS, (kernel_intrinsics,))


@dataclass
class CompiledRule:
    program: Program
    prog: Any  # nfa.kernel.Prog
    module: ModuleType
    mask: npt.NDArray[np.bool_]  # streams the rule reads
    layout: Layout
    compile_s: float


def _bounds(program: Program) -> tuple[int, int]:
    """Most edges a decision graph can return, and most stack pushes (all conditions true)."""
    branch, stack = 1, 1
    for state in range(program.n_states):
        todo, edges, pushes = [state], 0, 1
        while todo and pushes < 10_000:
            current = todo.pop()
            for e in program.edges_of(current):
                if program.edge_action[e] == Action.PROCEED:
                    todo.append(int(program.edge_target[e]))
                    pushes += 1
                else:
                    edges += 1
        branch, stack = max(branch, edges), max(stack, pushes + 1)
    return branch, stack


class RuleSet:
    """The generated code and kernel arrays of an engine's programs."""

    def __init__(self, programs: Sequence[Program], pool: StringPool, max_runs: int):
        self.schema = programs[0].schema
        self.tables = StringTables(pool)
        pure: dict[tuple[ir.Expr, codegen.Lookups], int] = {}
        rows: list[list[int]] = []
        for program in programs:
            atom_rows = []
            n_iter = 0
            for atom in program.atoms:
                if ir.reads_stages(atom):
                    n_iter += 1
                    atom_rows.append(-n_iter)
                    continue
                uses = any(isinstance(n, ir.Op) and n.op == "lookup" for n in ir.walk(atom))
                key = (atom, program.tables if uses else ())
                atom_rows.append(pure.setdefault(key, len(pure)))
            rows.append(atom_rows)
        started = time.perf_counter()
        self.pure_atoms = list(pure)
        source = codegen.pure_source(self.pure_atoms, self.schema, pool, self.tables)
        self.pure_module = codegen.load_module(source, "pure")
        self.pure_compile_s = time.perf_counter() - started
        self.rules = [
            self._compile(program, np.asarray(r, np.int64), pool, max_runs)
            for program, r in zip(programs, rows, strict=True)
        ]

    def _compile(
        self, program: Program, atom_row: npt.NDArray[np.int64], pool: StringPool, max_runs: int
    ) -> CompiledRule:
        schema = self.schema
        started = time.perf_counter()
        iterative = [a for a in program.atoms if ir.reads_stages(a)]
        lay = layout(program)
        source = codegen.program_source(iterative, schema, pool, self.tables, program.tables, lay)
        module = codegen.load_module(source, "rule")
        branch, stack = _bounds(program)
        formula = max(1, int(np.max(np.diff(program.edge_formula), initial=1)))
        ps = np.array(
            [
                program.start_state,
                program.window_ms,
                int(program.skip),
                program.skip_stage,
                max_runs,
                int(program.on_timeout is not None),
                branch,
                stack,
                formula,
                len(iterative),
            ],
            np.int64,
        )

        def i64(a: npt.NDArray[np.int32]) -> npt.NDArray[np.int64]:
            return np.ascontiguousarray(a, dtype=np.int64)

        prog = Prog(
            i64(program.state_kind),
            i64(program.state_edges),
            i64(program.edge_action),
            i64(program.edge_target),
            i64(program.edge_stage),
            i64(program.formula_code),
            i64(program.edge_formula),
            atom_row,
            lay.agg,
            ps,
            lay.ev_int,
            lay.ev_float,
            lay.ev_valid,
            *decision_tables(program, atom_row),
        )
        mask = np.zeros(len(schema.streams), np.bool_)
        mask[list(program.stage_streams)] = True
        return CompiledRule(program, prog, module, mask, lay, time.perf_counter() - started)


__all__ = ["Aggregate", "CompiledRule", "RuleSet"]
