"""Numba source for a SQL rule's DEFINE conditions and MEASURES, with `evaluate`'s semantics.

`kernel_functions` turns the `nfa.rowpattern_expr` trees of a `SqlProgram` into two jitted
functions for the Numba row-pattern kernel: `condition` (what `nfa.rowpattern_key._condition`
answers) and `measures` (what `_measures` and `_all_rows` compute). As in `nfa.codegen`, no
rule text reaches the source: names are generated, literals come from typed values and
a string is `strs[k]`, an entry of a table of pool ids passed at run time (`intern` gives
a text its index k), so the source holds no string literal at all, and it does not depend
on the pool: every partition's pool, and a pool restored or compacted, reuse one compiled
module (pool ids baked in would compile one per pool).

Rows: column c of a key's local row t is `valid[lo + t, c]` (not null) and its value
`floats[lo + t, c]` (DOUBLE) or `ints[lo + t, c]` (BIGINT, BOOLEAN as 0/1, VARCHAR as pool
id); rows 0..n-1 are received, `complete` says no more will come. Every value is a pair of
variables (value, valid). A run-time error (division or modulo by zero: RowPatternError) and
"needs a row not received yet" (NeedMoreRows) leave the code by an early return, in the same
order as the tree walk raises them, which is why the code mirrors its evaluation order:
strict operators evaluate every argument left to right, `if` and `coalesce` are lazy, and
`and`/`or` evaluate in order but remember an error and raise it only if no operand decided.
An `and`/`or` operand that can fail, and a measure that can fail (its error makes it null),
get their own `_rp_` helper returning (status, value, valid): 0 ok, 1 error, 2 needs rows.
(Measured: a one-pass loop left by `break` instead compiles no faster, a function per
measure slower; Numba's `inline="always"` slower still.)

Types follow the Python values `evaluate` produces, not the declared `RType` alone: a
node's *kind* is bool, int, float, str or null (a NULL literal, or a strict operator over
one). Supported: constants, columns, CLASSIFIER() (as a VARCHAR value), MATCH_NUMBER(),
navigation (FIRST/LAST/PREV/NEXT, RUNNING/FINAL), the aggregates count, sum, avg, min, max,
bool_and, bool_or, arbitrary, and the calls + - * / % neg abs not and or = <> < <= > >=
between in is_null if coalesce and casts to integer/bigint/double/boolean; mixed BIGINT and
DOUBLE arithmetic and comparison as Python does (int/float comparisons are exact). Refused
(`Unsupported`, the rule stays on the Python engine): string functions and LIKE, `||`,
arrays, ordering strings, arithmetic on booleans, casts from DOUBLE or VARCHAR to integer,
array_agg/max_by/min_by, sum/avg/min/max over VARCHAR or BOOLEAN, `if`/`coalesce` whose
branches have different kinds, and a measure whose kind differs from its declared type
(its Python value would not have the type the caller decodes).

Quirks of the tree walk kept on purpose: a DEFINE holds only if its value `is True` (an
int 1 does not); CLASSIFIER() of the nameless gap label of `_absent` is ''; a measure's own
row is start-1 for an empty match, and a column read there at row -1 reads the last row
(Python's `rows[-1]`; the front end never reads the focus row outside navigation). Float
sums repeat `sum()` of the Python running this (Neumaier-compensated from 3.12 on).

Known differences, all beyond int64: Python ints are unbounded, the kernel's wrap (sums,
products, `abs` and negation of the smallest int64), and an int average divides two doubles
rather than rounding the exact quotient (identical while the sum is below 2**53).

Layout: `nfa.rowpattern_codegen_kinds` infers the kinds and refuses what is not supported,
`nfa.rowpattern_codegen_emit` writes the statements of an expression; this module puts
them into `condition` and `measures` (a DEFINE's truth, a measure's output slots).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import partial

from nfa.rowpattern_codegen_emit import JIT, Body, Module, Scope, Value
from nfa.rowpattern_codegen_kinds import BOOL, NULL, Unsupported, check_measure, may_fail
from nfa.rowpattern_expr import RExpr, RType
from nfa.rowpattern_rule import SqlProgram

__all__ = ["Unsupported", "kernel_functions"]

_ROWS = "labels, ints, floats, valid, lo, n, complete, number"
_CONDITION = f"label, start, current, {_ROWS}, strs"
_MEASURES = f"start, mlen, current, {_ROWS}, out_i, out_f, out_v, strs"
#: CPython 3.12 made `sum()` of floats compensated (Neumaier); the kernel follows the Python
#: that generates it, as that is the one the Python engine would run on.
_COMPENSATED_SUM = sys.version_info >= (3, 12)


def kernel_functions(sp: SqlProgram, intern: Callable[[str], int]) -> str:
    """Module-level source of the jitted `condition` and `measures` of `sp` (and the `_rp_`
    names they use), to append to a module that already imported `math`, `numba as nb` and
    `numpy as np`; `intern` gives a string's index in the table `strs` of pool ids that
    both functions take last. Raises Unsupported when an expression is outside the
    supported set.

    `condition(label, start, current, labels, ints, floats, valid, lo, n, complete, number,
    strs)` is 1 if label's DEFINE (None: true) is True at row `current`, rows start..current mapped
    to labels[0..current-start]; 0 if it is false, NULL, not a boolean or fails; 2 if it
    reads a row not received. `measures(start, mlen, current, labels, ints, floats, valid,
    lo, n, complete, number, out_i, out_f, out_v, strs)` evaluates the measures in order over the
    match start..start+mlen-1 (RUNNING up to `current`, which is also the row they are
    evaluated at) into out_f[m] (DOUBLE) or out_i[m] (BIGINT, BOOLEAN 0/1, VARCHAR pool id)
    and out_v[m] (not NULL; a failing measure is NULL) and returns 0, or 2 as soon as one
    reads a row not received (the outputs are then meaningless).
    """
    module = Module(intern, _COMPENSATED_SUM)
    program = sp.query.program
    cond = Body(module, 1)
    cond.emit("last = current")
    for label, define in enumerate(program.defines):
        if define is None:
            continue
        with cond.block(f"if label == {label}:"):
            scope = Scope("current", True, False, "return 2", "return 0")
            value = cond.expr(define, scope)
            if module.kind(define) == BOOL:
                with cond.block(f"if {value.valid} and {value.value}:"):
                    cond.emit("return 1")
            cond.emit("return 0")
    cond.emit("return 1")
    meas = Body(module, 1)
    meas.emit("last = start + mlen - 1")
    for m, measure in enumerate(sp.query.measures):
        _measure(meas, m, measure)
    meas.emit("return 0")
    ids = [int(intern(name)) for name in program.names]
    ids.append(int(intern("")))  # the nameless gap label of `_absent`
    parts = [f"_rp_names = np.array({ids!r}, dtype=np.int64)\n", *module.helpers]
    parts.append(f"{JIT}\ndef condition({_CONDITION}):\n" + cond.text())
    parts.append(f"{JIT}\ndef measures({_MEASURES}):\n" + meas.text())
    return "\n\n".join(parts) + "\n"


def _measure(body: Body, m: int, e: RExpr) -> None:
    """Measure `m` into out_i/out_f[m] and out_v[m]; its run-time error makes it NULL."""
    kind = body.m.kind(e)
    check_measure(e, kind)
    scope = Scope("current", True, True, "return 2", None)
    store = partial(_store, body, m, e.type)
    if may_fail(e):
        body.guarded(e, scope, f"out_v[{m}] = False", store)
    else:
        store(body.expr(e, scope))


def _store(body: Body, m: int, rtype: RType, v: Value) -> None:
    if v.kind == NULL:
        body.emit(f"out_v[{m}] = False")
        return
    if v.kind == BOOL:
        body.emit(f"out_i[{m}] = 1 if {v.value} else 0")
    else:
        body.emit(f"out_{'f' if rtype is RType.DOUBLE else 'i'}[{m}] = {v.value}")
    body.emit(f"out_v[{m}] = {v.valid}")
