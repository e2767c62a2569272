"""Timers and skip strategies of the product engine's kernels (no generated code).

FlinkCEP's advanceTime (windows close, absences at the end complete, timed-out partial
matches are reported) and processMatchesAccordingToSkipStrategy (completed runs are held
until no earlier partial match can still complete, then emitted, pruning what the skip
strategy discards), over the arrays of `nfa.kernel_store`; plus the kernel constants.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from nfa.kernel_store import (
    K_COMP,
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
    R_ORD,
    R_STATE,
    R_TS,
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
def match_time(P, S, r):  # type: ignore[no-untyped-def]
    R, N, EVR = S[0], S[5], S[12]
    if P.kind[R[r, R_STATE]] == PENDING:
        return R[r, R_TS] + P.ps[PS_WINDOW]
    return EVR[N[R[r, R_NODE], N_EV], V_TS]


@bare
def prune(P, S, runs, lo, n, match):  # type: ignore[no-untyped-def]
    """Drop runs[lo:n] that the skip strategy discards after `match`; returns the new end."""
    R, N, EVR = S[0], S[5], S[12]
    skip = P.ps[PS_SKIP]
    node = R[match, R_NODE]
    pruning = -1
    strict = False
    if skip == TO_NEXT:
        while N[node, N_PARENT] >= 0:
            node = N[node, N_PARENT]
        pruning = EVR[N[node, N_EV], V_ORD]
    elif skip == PAST_LAST:
        pruning = EVR[N[node, N_EV], V_ORD]
    elif skip in (TO_FIRST, TO_LAST):
        strict = True
        while node >= 0:
            if N[node, N_STAGE] == P.ps[PS_SKIP_STAGE]:
                pruning = EVR[N[node, N_EV], V_ORD]
                if skip == TO_LAST:
                    break
            node = N[node, N_PARENT]
    if pruning < 0:
        return n
    out = lo
    for j in range(lo, n):
        r = runs[j]
        start = R[r, R_ORD]
        if start < pruning or (not strict and start == pruning):
            free_run(S, r)
        else:
            runs[out] = r
            out += 1
    return out


@bare
def emit_by_skip(P, S, W, key, npot, npart, phase, tag):  # type: ignore[no-untyped-def]
    """Hold completed runs until no earlier partial match can still complete, then emit."""
    R, K = S[0], S[9]
    part, pot, comp = W[0], W[1], W[2]
    nc = load_list(R, K[key, K_COMP], comp)
    for j in range(npot):
        comp[nc] = pot[j]
        nc += 1
    sort_runs(R, comp, nc)
    lo = 0
    while lo < nc:
        earliest = comp[lo]
        if npart > 0 and before(R, part[0], earliest):
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
    R, K = S[0], S[9]
    head = K[key, K_RUNS]
    if K[key, K_NCOMP] == 0 and (head < 0 or now - R[head, R_TS] < window):
        return  # runs are in start order: nothing expires, nothing held back
    kept, pot = W[0], W[1]
    nk = 0
    npot = 0
    r = head
    while r >= 0:
        nxt = R[r, R_NEXT]
        if now - R[r, R_TS] >= window:
            if P.kind[R[r, R_STATE]] == PENDING:
                pot[npot] = r
                npot += 1
            else:
                if P.ps[PS_TIMEOUT] != 0:
                    emit(S, OUT_TIMEOUT, key, r, R[r, R_TS] + window, phase, tag)
                free_run(S, r)
        else:
            kept[nk] = r
            nk += 1
        r = nxt
    if npot > 0 or K[key, K_NCOMP] > 0:
        nk = emit_by_skip(P, S, W, key, npot, nk, phase, tag)
    K[key, K_RUNS] = link_list(R, kept, 0, nk)
    K[key, K_NRUNS] = nk


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
def advance_all(P, S, now, phase):  # type: ignore[no-untyped-def]
    """Advance every key's runs to `now`, in key order (the reference's sorted states)."""
    S = ensure(S, 0, 0, S[10][M_LIVE_RUNS] + 4, 0)
    K = S[9]
    longest = 1
    for key in range(K.shape[0]):
        longest = max(longest, K[key, K_NRUNS] + K[key, K_NCOMP] + 1)
    W = scratch(longest, 1, 1, P.ps[PS_N_ITER], 1)
    for key in range(K.shape[0]):
        if K[key, K_NRUNS] > 0 or K[key, K_NCOMP] > 0:
            advance_key(P, S, W, key, now, phase, key)
    return S


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
