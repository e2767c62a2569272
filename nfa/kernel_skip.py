"""Timers and skip strategies of the product engine's kernels (no generated code).

FlinkCEP's advanceTime (windows close, absences at the end complete, timed-out partial
matches are reported) and processMatchesAccordingToSkipStrategy (completed runs are held
until no earlier partial match can still complete, then emitted, pruning what the skip
strategy discards), over the arrays of `nfa.kernel_store`; plus the kernel constants.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from nfa.kernel_keys import release_key, row_of
from nfa.kernel_store import (
    DUE_HI,
    DUE_LO,
    DUE_NEVER,
    DUE_SHIFT,
    K_COMP,
    K_DUE,
    K_KEY,
    K_NCOMP,
    K_NRUNS,
    K_RUNS,
    M_LIVE_RUNS,
    N_EV,
    N_PARENT,
    N_STAGE,
    OUT_MATCH,
    OUT_TIMEOUT,
    R_NEXT,
    R_NODE,
    R_STATE,
    T_ORD,
    T_TS,
    V_ORD,
    V_TS,
    bare,
    before,
    emit,
    ensure,
    free_run,
    inlined,
    link_list,
    load_list,
    sort_runs,
)

# Program scalars (Prog.ps)
PS_START, PS_WINDOW, PS_SKIP, PS_SKIP_STAGE, PS_MAX_RUNS, PS_TIMEOUT = 0, 1, 2, 3, 4, 5
PS_BRANCH, PS_STACK, PS_FORMULA, PS_N_ITER = 6, 7, 8, 9
# StateKind, Action, SkipKind and formula opcodes, as in nfa.program
FINAL, STOP, PENDING = 1, 2, 3
TAKE, IGNORE, PROCEED = 0, 1, 2
NO_SKIP, TO_NEXT, PAST_LAST, TO_FIRST, TO_LAST = 0, 1, 2, 3, 4
F_NOT, F_AND, F_OR, F_TRUE = -1, -2, -3, -4
# Aggregate rows (Prog.agg): stage, kind, source, valid row, value slot
A_FIRST, A_LAST, A_COUNT, A_CD, A_SUM, A_AVG, A_MIN, A_MAX = 0, 1, 2, 3, 4, 5, 6, 7
SRC_EVENT, SRC_TIME, SRC_FLOAT, SRC_INT = 0, 1, 2, 3


@bare
def table_entry(P, state, is_start, pure, i):  # type: ignore[no-untyped-def]
    """The row of `nfa.engine_decide`'s table for a run in `state` and event i: the bits of
    the pure atoms its decision reads pick it (-1: the state has no table)."""
    v = 2 * state + (1 if is_start else 0)
    base = P.tbase[v]
    if base < 0:
        return -1
    m = 0
    for b in range(P.tatom.shape[1]):
        row = P.tatom[v, b]
        if row < 0:
            break
        if pure[row, i]:
            m += 1 << b
    return base + m


@bare
def start_idle(P, pure, i):  # type: ignore[no-untyped-def]
    """Whether the start run creates nothing for event i (known from the table alone)."""
    ent = table_entry(P, P.ps[PS_START], True, pure, i)
    return ent >= 0 and P.toff[ent] == P.toff[ent + 1]


@bare
def due_units(t):  # type: ignore[no-untyped-def]
    """Time t in K_DUE units (floor, clipped: monotone, so comparisons stay conservative)."""
    return min(max(t >> DUE_SHIFT, DUE_LO), DUE_HI)


@bare
def set_due(P, S, ks):  # type: ignore[no-untyped-def]
    """Record when the first run of the key in row ks can expire (a watermark advance
    visits only keys whose K_DUE passed; nothing else can change for a key without an
    event)."""
    RT, K = S[13], S[9]
    head = K[ks, K_RUNS]
    if P.ps[PS_WINDOW] <= 0 or (head < 0 and K[ks, K_NCOMP] == 0):
        K[ks, K_DUE] = DUE_NEVER
    elif head < 0:
        K[ks, K_DUE] = DUE_LO
    else:
        K[ks, K_DUE] = due_units(RT[head, T_TS] + P.ps[PS_WINDOW])


@bare
def match_time(P, S, r):  # type: ignore[no-untyped-def]
    R, N, RT, EVT = S[0], S[5], S[13], S[14]
    if P.kind[R[r, R_STATE]] == PENDING:
        return RT[r, T_TS] + P.ps[PS_WINDOW]
    return EVT[N[R[r, R_NODE], N_EV], V_TS]


@bare
def prune(P, S, runs, lo, n, match):  # type: ignore[no-untyped-def]
    """Drop runs[lo:n] that the skip strategy discards after `match`; returns the new end."""
    R, N, RT, EVT = S[0], S[5], S[13], S[14]
    skip = P.ps[PS_SKIP]
    node = R[match, R_NODE]
    pruning = -1
    strict = False
    if skip == TO_NEXT:
        while N[node, N_PARENT] >= 0:
            node = N[node, N_PARENT]
        pruning = EVT[N[node, N_EV], V_ORD]
    elif skip == PAST_LAST:
        pruning = EVT[N[node, N_EV], V_ORD]
    elif skip in (TO_FIRST, TO_LAST):
        strict = True
        while node >= 0:
            if N[node, N_STAGE] == P.ps[PS_SKIP_STAGE]:
                pruning = EVT[N[node, N_EV], V_ORD]
                if skip == TO_LAST:
                    break
            node = N[node, N_PARENT]
    if pruning < 0:
        return n
    out = lo
    for j in range(lo, n):
        r = runs[j]
        start = RT[r, T_ORD]
        if start < pruning or (not strict and start == pruning):
            free_run(S, r)
        else:
            runs[out] = r
            out += 1
    return out


@bare
def emit_by_skip(P, S, W, key, ks, npot, npart, phase, tag):  # type: ignore[no-untyped-def]
    """Hold completed runs until no earlier partial match can still complete, then emit
    (`key` has row `ks` of `K`)."""
    R, K, RT = S[0], S[9], S[13]
    part, pot, comp = W[0], W[1], W[2]
    nc = load_list(R, K[ks, K_COMP], comp)
    for j in range(npot):
        comp[nc] = pot[j]
        nc += 1
    sort_runs(RT, comp, nc)
    lo = 0
    while lo < nc:
        earliest = comp[lo]
        if npart > 0 and before(RT, part[0], earliest):
            break
        lo += 1
        npart = prune(P, S, part, 0, npart, earliest)
        nc = prune(P, S, comp, lo, nc, earliest)
        emit(S, OUT_MATCH, key, earliest, match_time(P, S, earliest), phase, tag)
        free_run(S, earliest)
    K[ks, K_COMP] = link_list(R, comp, lo, nc)
    K[ks, K_NCOMP] = nc - lo
    return npart


@inlined
def advance_key(P, S, W, key, ks, now, phase, tag):  # type: ignore[no-untyped-def]
    """FlinkCEP's advanceTime for one key (row ks of `K`): close windows, complete
    absences, report timeouts. Inlined: most keys have nothing due, which is decided here
    without a call (a call passes every array of the state tuples)."""
    window = P.ps[PS_WINDOW]
    if window <= 0:
        return
    K, RT = S[9], S[13]
    head = K[ks, K_RUNS]
    if K[ks, K_NCOMP] == 0 and (head < 0 or now - RT[head, T_TS] < window):
        return  # runs are in start order: nothing expires, nothing held back
    expire_key(P, S, W, key, ks, now, phase, tag)


@bare
def expire_key(P, S, W, key, ks, now, phase, tag):  # type: ignore[no-untyped-def]
    """`advance_key` for a key with something due: drop (or report) the runs whose window
    closed, complete pending absences, emit what the skip strategy released."""
    window = P.ps[PS_WINDOW]
    R, K, RT = S[0], S[9], S[13]
    head = K[ks, K_RUNS]
    kept, pot = W[0], W[1]
    nk = 0
    npot = 0
    r = head
    while r >= 0:
        nxt = R[r, R_NEXT]
        if now - RT[r, T_TS] >= window:
            if P.kind[R[r, R_STATE]] == PENDING:
                pot[npot] = r
                npot += 1
            else:
                if P.ps[PS_TIMEOUT] != 0:
                    emit(S, OUT_TIMEOUT, key, r, RT[r, T_TS] + window, phase, tag)
                free_run(S, r)
        else:
            kept[nk] = r
            nk += 1
        r = nxt
    if npot > 0 or K[ks, K_NCOMP] > 0:
        nk = emit_by_skip(P, S, W, key, ks, npot, nk, phase, tag)
    K[ks, K_RUNS] = link_list(R, kept, 0, nk)
    K[ks, K_NRUNS] = nk
    set_due(P, S, ks)


@njit(cache=True)
def scratch(n_list, branch, stack, n_iter, formula):  # type: ignore[no-untyped-def]
    """Work arrays: part/kept, potential, completed, edges, successor state, successor edge,
    stack, iterative-atom cache, formula stack, node per take edge."""
    return (
        np.empty(n_list, np.int64),
        np.empty(n_list, np.int64),
        np.empty(2 * n_list, np.int64),
        np.empty(branch, np.int64),
        np.empty(2 * branch, np.int64),
        np.empty(2 * branch, np.int64),
        np.empty(stack, np.int64),
        np.empty(max(n_iter, 1), np.int8),
        np.empty(formula, np.bool_),
        np.empty(branch, np.int64),
    )


@njit(cache=True)
def advance_all(P, S, now, phase, rows):  # type: ignore[no-untyped-def]
    """Advance the runs of the keys in `rows` of the key table (by ascending key id: the
    reference's sorted states) to `now`; the driver passes the rows whose K_DUE passed
    (`due_rows`). Keys left without state leave the table, which may move other keys'
    rows: each row is checked to still hold its key (`row_of`). A key emits at most one
    output per run or held-back match: room for those of the passed rows, not for every
    live run (which made each call grow the output array and the driver shrink it)."""
    K = S[9]
    keys = np.empty(rows.shape[0], np.int64)
    longest = 1
    outputs = 4
    for j in range(rows.shape[0]):
        keys[j] = K[rows[j], K_KEY]
        held = K[rows[j], K_NRUNS] + K[rows[j], K_NCOMP]
        longest = max(longest, held + 1)
        outputs += held
    S = ensure(S, 0, 0, outputs)
    W = scratch(longest, 1, 1, P.ps[PS_N_ITER], 1)
    advance_rows(P, S, W, rows, keys, now, phase)
    return S


@bare
def advance_rows(P, S, W, rows, keys, now, phase):  # type: ignore[no-untyped-def]
    """`advance_all`'s loop, without reference counting (`bare`: the inlined
    `advance_key` would otherwise count every array it takes from the tuples)."""
    K, M = S[9], S[10]
    for j in range(rows.shape[0]):
        if keys[j] < 0:
            continue  # an empty row (the warm-up passes one)
        ks = row_of(K, rows[j], keys[j])
        advance_key(P, S, W, keys[j], ks, now, phase, keys[j])
        release_key(K, M, ks)


def due_rows(S: tuple[npt.NDArray[Any], ...], now: int) -> npt.NDArray[np.int64]:
    """The rows of the key table whose key's first run's window may have closed by `now`,
    by ascending key id (vectorised; empty rows are never due)."""
    limit = min(max(now >> DUE_SHIFT, DUE_LO), DUE_HI)
    K = S[9]
    rows = np.flatnonzero(K[:, K_DUE] <= limit)
    return rows[np.argsort(K[rows, K_KEY], kind="stable")].astype(np.int64)


@njit(cache=True)
def flush_all(P, S, phase):  # type: ignore[no-untyped-def]
    """End of input: emit every completed run still held back by the skip strategy."""
    S = ensure(S, 0, 0, S[10][M_LIVE_RUNS] + 4)
    K, M = S[9], S[10]
    held = 0
    longest = 1
    for ks in range(K.shape[0]):
        if K[ks, K_NCOMP] > 0:
            held += 1
            longest = max(longest, K[ks, K_NCOMP] + 1)
    rows = np.empty(held, np.int64)
    keys = np.empty(held, np.int64)
    held = 0
    for ks in range(K.shape[0]):
        if K[ks, K_NCOMP] > 0:
            rows[held] = ks
            keys[held] = K[ks, K_KEY]
            held += 1
    W = scratch(longest, 1, 1, P.ps[PS_N_ITER], 1)
    for j in range(held):  # releasing a key may move other keys' rows: `row_of`
        ks = row_of(K, rows[j], keys[j])
        emit_by_skip(P, S, W, keys[j], ks, 0, 0, phase, keys[j])
        release_key(K, M, ks)
    return S
