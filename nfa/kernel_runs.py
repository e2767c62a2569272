"""Per-run aggregate slots of the product engine's kernels: copying and updating them.

A run's slots are laid out by `nfa.kernel_layout` (value, count and not-null columns per
kept aggregate); a successor run copies its parent's slots, then the taking stage's
aggregates are updated with the taken event. `count_distinct` is not kept in a slot: it
is counted over the run's stored events when a condition reads it.
"""

from __future__ import annotations

import numpy as np

from nfa.kernel_skip import (
    A_AVG,
    A_COUNT,
    A_FIRST,
    A_LAST,
    A_MAX,
    A_MIN,
    A_SUM,
    SRC_EVENT,
    SRC_FLOAT,
    SRC_INT,
    SRC_TIME,
)
from nfa.kernel_store import (
    N_EV,
    N_PARENT,
    N_STAGE,
    T_ORD,
    T_TS,
    V_TS,
    bare,
    counted,
    inlined,
)


@bare
def take_into(P, S, E, nr, stage, i):  # type: ignore[no-untyped-def]
    """Update run nr's aggregate slots (copied from its parent) for event i taken by `stage`
    (slots as `nfa.kernel_layout` lays them out: value, count and not-null columns)."""
    RAI, RAF, RAN, RAO = S[1], S[2], S[3], S[4]
    fl, it, va, ts = E[0], E[1], E[2], E[3]
    for k in range(P.agg.shape[0]):
        if P.agg[k, 0] != stage:
            continue
        kind, src, vrow, slot = P.agg[k, 1], P.agg[k, 2], P.agg[k, 3], P.agg[k, 4]
        ii, fi, ni, oi = P.agg[k, 5], P.agg[k, 6], P.agg[k, 7], P.agg[k, 8]
        ok = True
        vi = 0
        vf = 0.0
        if src == SRC_TIME:
            vi = ts[i]
        elif src == SRC_FLOAT:
            ok = va[vrow, i]
            vf = fl[slot, i]
        elif src == SRC_INT:
            ok = va[vrow, i]
            vi = it[slot, i]
        isf = src == SRC_FLOAT
        if kind in (A_FIRST, A_LAST):
            if kind == A_LAST or RAN[nr, ni] == 0:
                if isf:
                    RAF[nr, fi] = vf
                else:
                    RAI[nr, ii] = vi
                RAO[nr, oi] = ok
            RAN[nr, ni] += 1
        elif kind == A_COUNT:
            if src == SRC_EVENT or ok:
                RAN[nr, ni] += 1
        elif kind in (A_SUM, A_AVG):
            if ok:
                if isf:
                    RAF[nr, fi] += vf
                else:
                    RAI[nr, ii] += vi
                RAN[nr, ni] += 1
        elif kind in (A_MIN, A_MAX) and ok:
            if RAN[nr, ni] == 0:
                if isf:
                    RAF[nr, fi] = vf
                else:
                    RAI[nr, ii] = vi
            elif kind == A_MIN:
                if isf:
                    if vf < RAF[nr, fi]:
                        RAF[nr, fi] = vf
                elif vi < RAI[nr, ii]:
                    RAI[nr, ii] = vi
            elif isf:
                if vf > RAF[nr, fi]:
                    RAF[nr, fi] = vf
            elif vi > RAI[nr, ii]:
                RAI[nr, ii] = vi
            RAN[nr, ni] += 1


@inlined
def copy_run(S, dst, src):  # type: ignore[no-untyped-def]
    RAI, RAF, RAN, RAO, RT = S[1], S[2], S[3], S[4], S[13]
    RT[dst, T_TS] = RT[src, T_TS]
    RT[dst, T_ORD] = RT[src, T_ORD]
    for k in range(RAI.shape[1]):
        RAI[dst, k] = RAI[src, k]
    for k in range(RAF.shape[1]):
        RAF[dst, k] = RAF[src, k]
    for k in range(RAN.shape[1]):
        RAN[dst, k] = RAN[src, k]
    for k in range(RAO.shape[1]):
        RAO[dst, k] = RAO[src, k]


@counted
def count_distinct_int(S, node, stage, vrow, slot):  # type: ignore[no-untyped-def]
    """Distinct non-null values of an int column (or, with vrow < 0, the time) over the
    chain's events of `stage`."""
    N, EVI, EVV, EVT = S[5], S[6], S[8], S[14]
    values = np.empty(_chain_length(N, node), np.int64)
    m = 0
    while node >= 0:
        if N[node, N_STAGE] == stage:
            ev = N[node, N_EV]
            if vrow < 0:
                values[m] = EVT[ev, V_TS]
                m += 1
            elif EVV[ev, vrow]:
                values[m] = EVI[ev, slot]
                m += 1
        node = N[node, N_PARENT]
    return _distinct(values[:m])


@counted
def count_distinct_float(S, node, stage, vrow, slot):  # type: ignore[no-untyped-def]
    N, EVF, EVV = S[5], S[7], S[8]
    values = np.empty(_chain_length(N, node), np.float64)
    m = 0
    while node >= 0:
        if N[node, N_STAGE] == stage and EVV[N[node, N_EV], vrow]:
            values[m] = EVF[N[node, N_EV], slot]
            m += 1
        node = N[node, N_PARENT]
    return _distinct(values[:m])


@bare
def _chain_length(N, node):  # type: ignore[no-untyped-def]
    """How many events the chain of nodes ending at `node` holds (all stages)."""
    n = 0
    while node >= 0:
        n += 1
        node = N[node, N_PARENT]
    return n


@counted
def _distinct(values):  # type: ignore[no-untyped-def]
    if values.shape[0] == 0:
        return 0
    values = np.sort(values)
    distinct = 1
    for k in range(1, values.shape[0]):
        if values[k] != values[k - 1]:
            distinct += 1
    return distinct
