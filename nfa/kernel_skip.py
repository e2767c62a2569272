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

from nfa.kernel_store import (
    DUE_HI,
    DUE_LO,
    DUE_NEVER,
    DUE_SHIFT,
    K_COMP,
    K_DUE,
    K_NCOMP,
    K_NRUNS,
    K_RUNS,
    M_DROPPED,
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
def set_due(P, S, key):  # type: ignore[no-untyped-def]
    """Record when key's first run can expire (a watermark advance visits only keys whose
    K_DUE passed; nothing else can change for a key without an event)."""
    RT, K = S[13], S[9]
    head = K[key, K_RUNS]
    if P.ps[PS_WINDOW] <= 0 or (head < 0 and K[key, K_NCOMP] == 0):
        K[key, K_DUE] = DUE_NEVER
    elif head < 0:
        K[key, K_DUE] = DUE_LO
    else:
        K[key, K_DUE] = due_units(RT[head, T_TS] + P.ps[PS_WINDOW])


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
def emit_by_skip(P, S, W, key, npot, npart, phase, tag):  # type: ignore[no-untyped-def]
    """Hold completed runs until no earlier partial match can still complete, then emit."""
    R, K, RT = S[0], S[9], S[13]
    part, pot, comp = W[0], W[1], W[2]
    nc = load_list(R, K[key, K_COMP], comp)
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
    K[key, K_COMP] = link_list(R, comp, lo, nc)
    K[key, K_NCOMP] = nc - lo
    return npart


@bare
def advance_key(P, S, W, key, now, phase, tag):  # type: ignore[no-untyped-def]
    """FlinkCEP's advanceTime for one key: close windows, complete absences, report timeouts."""
    window = P.ps[PS_WINDOW]
    if window <= 0:
        return
    R, K, RT = S[0], S[9], S[13]
    head = K[key, K_RUNS]
    if K[key, K_NCOMP] == 0 and (head < 0 or now - RT[head, T_TS] < window):
        return  # runs are in start order: nothing expires, nothing held back
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
    if npot > 0 or K[key, K_NCOMP] > 0:
        nk = emit_by_skip(P, S, W, key, npot, nk, phase, tag)
    K[key, K_RUNS] = link_list(R, kept, 0, nk)
    K[key, K_NRUNS] = nk
    set_due(P, S, key)


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
def advance_all(P, S, now, phase, keys):  # type: ignore[no-untyped-def]
    """Advance the runs of `keys` (ascending: the reference's sorted states) to `now`;
    the driver passes the keys whose K_DUE passed (`due_keys`)."""
    S = ensure(S, 0, 0, S[10][M_LIVE_RUNS] + 4, 0)
    K = S[9]
    longest = 1
    for key in keys:
        longest = max(longest, K[key, K_NRUNS] + K[key, K_NCOMP] + 1)
    W = scratch(longest, 1, 1, P.ps[PS_N_ITER], 1)
    for key in keys:
        if K[key, K_NRUNS] > 0 or K[key, K_NCOMP] > 0:
            advance_key(P, S, W, key, now, phase, key)
    return S


def due_keys(S: tuple[npt.NDArray[Any], ...], now: int) -> npt.NDArray[np.intp]:
    """The keys whose first run's window may have closed by `now` (vectorised)."""
    limit = min(max(now >> DUE_SHIFT, DUE_LO), DUE_HI)
    return np.flatnonzero(S[9][:, K_DUE] <= limit)


@njit(cache=True)
def flush_all(P, S, phase):  # type: ignore[no-untyped-def]
    """End of input: emit every completed run still held back by the skip strategy."""
    S = ensure(S, 0, 0, S[10][M_LIVE_RUNS] + 4, 0)
    K = S[9]
    longest = 1
    for key in range(K.shape[0]):
        longest = max(longest, K[key, K_NCOMP] + 1)
    W = scratch(longest, 1, 1, P.ps[PS_N_ITER], 1)
    for key in range(K.shape[0]):
        if K[key, K_NCOMP] > 0:
            emit_by_skip(P, S, W, key, 0, 0, phase, key)
    return S


@njit(cache=True)
def evict_keys(S, keys):  # type: ignore[no-untyped-def]
    """Drop every partial and held-back match of `keys` (counted as dropped)."""
    R, K, M = S[0], S[9], S[10]
    for key in keys:
        if key >= K.shape[0]:
            continue
        for field in (K_RUNS, K_COMP):
            r = K[key, field]
            while r >= 0:
                nxt = R[r, R_NEXT]
                free_run(S, r)
                M[M_DROPPED] += 1
                r = nxt
            K[key, field] = -1
        K[key, K_NRUNS] = 0
        K[key, K_NCOMP] = 0
        K[key, K_DUE] = DUE_NEVER
