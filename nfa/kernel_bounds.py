"""The bounds of `EngineConfig` that the product engine's driver applies between calls.

`max_keys` evicts whole keys (`evict_keys`), `max_runs_per_rule` drops a rule's oldest
partial matches over all keys (`drop_oldest_runs`); the policies, shared with the
reference engine, are described in `nfa.reference_bounds`. Both count what they drop in
`M[M_DROPPED]`, which the driver adds to `counters.partial_matches_dropped`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from nfa.kernel_keys import find_key, release_key, row_of
from nfa.kernel_skip import PS_WINDOW, set_due
from nfa.kernel_store import (
    DUE_LO,
    K_COMP,
    K_DUE,
    K_KEY,
    K_NCOMP,
    K_NRUNS,
    K_RUNS,
    M_DROPPED,
    R_NEXT,
    T_ORD,
    T_TS,
    free_run,
)


@njit(cache=True)
def evict_keys(S, keys):  # type: ignore[no-untyped-def]
    """Drop every partial and held-back match of `keys` (ids; counted as dropped)."""
    R, K, M = S[0], S[9], S[10]
    for key in keys:
        ks = find_key(K, key)
        if ks < 0:
            continue
        for field in (K_RUNS, K_COMP):
            r = K[ks, field]
            while r >= 0:
                nxt = R[r, R_NEXT]
                free_run(S, r)
                M[M_DROPPED] += 1
                r = nxt
            K[ks, field] = -1
        K[ks, K_NRUNS] = 0
        K[ks, K_NCOMP] = 0
        release_key(K, M, ks)


@njit(cache=True)
def drop_oldest_runs(P, S, limit):  # type: ignore[no-untyped-def]
    """Drop the rule's oldest partial matches beyond `limit` (by start time, start order,
    then position in the key's list, as `nfa.reference_bounds.drop_oldest_runs`); returns
    how many were dropped."""
    R, K, M, RT = S[0], S[9], S[10], S[13]
    total = 0
    for ks in range(K.shape[0]):  # empty rows have no runs
        total += K[ks, K_NRUNS]
    excess = total - limit
    if excess <= 0:
        return 0
    rows = np.empty(total, np.int64)
    owner = np.empty(total, np.int64)  # key ids: releasing a key may move other rows
    where = np.empty(total, np.int64)  # their rows before any release (`row_of`)
    n = 0
    for ks in range(K.shape[0]):  # each key's list in priority order: position ascending
        r = K[ks, K_RUNS]
        while r >= 0:
            rows[n] = r
            owner[n] = K[ks, K_KEY]
            where[n] = ks
            n += 1
            r = R[r, R_NEXT]
    starts = np.empty(total, np.int64)
    for j in range(total):
        starts[j] = RT[rows[j], T_ORD]
    oldest = np.argsort(starts, kind="mergesort")  # stable: keeps positions in order
    for j in range(total):
        starts[j] = RT[rows[oldest[j]], T_TS]
    oldest = oldest[np.argsort(starts, kind="mergesort")][:excess]
    gone = np.zeros(R.shape[0], np.bool_)
    for j in oldest:
        gone[rows[j]] = True
    for j in oldest:
        if not gone[rows[j]]:
            continue  # freed with an earlier victim of the same key
        ks = row_of(K, where[j], owner[j])
        head = -1
        tail = -1
        kept = 0
        r = K[ks, K_RUNS]
        while r >= 0:
            nxt = R[r, R_NEXT]
            if gone[r]:
                gone[r] = False
                free_run(S, r)
            else:
                if tail < 0:
                    head = r
                else:
                    R[tail, R_NEXT] = r
                tail = r
                kept += 1
            r = nxt
        if tail >= 0:
            R[tail, R_NEXT] = -1
        K[ks, K_RUNS] = head
        K[ks, K_NRUNS] = kept
        set_due(P, S, ks)
        if K[ks, K_NCOMP] > 0 and P.ps[PS_WINDOW] > 0:
            K[ks, K_DUE] = DUE_LO  # held-back matches may be due at the next advance
        release_key(K, M, ks)
    M[M_DROPPED] += excess
    return excess
