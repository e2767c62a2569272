"""The jitted step kernels of the product engine: FlinkCEP's NFA over arrays.

This is `nfa.reference` (computeNextStates, createDecisionGraph, advanceTime,
processMatchesAccordingToSkipStrategy) transcribed onto the array state of
`nfa.kernel_store`, one rule at a time over a batch of released events. Programs are data
(`Prog`, the program's arrays); only the iterative atoms are generated code: the functions
in `SPECIALISED` call the global `iter_atom`, and `nfa.codegen` copies their source into
each generated module next to that module's own `iter_atom` (a jitted function passed as an
argument would make Numba refuse to cache the caller). The stub here serves programs
without iterative atoms.

Outputs carry (phase, tag) so the driver can merge several rules into the reference's
order: phase 0 tag = index of the released event, phase 1 (watermark advance) and phase 2
(final flush) tag = key.

Speed (card testing, 100k keys: the state is larger than the CPU caches): `run_events`
requests the rows of the events a few positions ahead (`warm`), and `step_key` and the
helpers called for every event are inlined (`nfa.kernel_store.inlined`): a call passes
every array of the state, event and program tuples on the stack.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

from nfa.kernel_keys import (
    find_key,
    fit_keys,
    grow_keys,
    probe_key,
    release_key,
    take_slot,
    warm,
)
from nfa.kernel_runs import copy_run, take_into
from nfa.kernel_skip import (
    F_AND,
    F_NOT,
    F_TRUE,
    FINAL,
    IGNORE,
    NO_SKIP,
    PROCEED,
    PS_BRANCH,
    PS_FORMULA,
    PS_MAX_RUNS,
    PS_N_ITER,
    PS_SKIP,
    PS_STACK,
    PS_START,
    STOP,
    advance_key,
    emit_by_skip,
    match_time,
    scratch,
    set_due,
    start_idle,
    table_entry,
)
from nfa.kernel_store import (
    K_NCOMP,
    K_NRUNS,
    K_RUNS,
    M_DROPPED,
    M_LIVE_EV,
    M_LIVE_KEYS,
    M_LIVE_NODES,
    M_LIVE_RUNS,
    M_NOUT,
    N_REF,
    OUT_MATCH,
    R_NEXT,
    R_NODE,
    R_STATE,
    T_ORD,
    T_TS,
    alloc_event,
    alloc_node,
    alloc_run,
    bare,
    emit,
    ensure,
    free_run,
    inlined,
    link_list,
    sort_runs,
)


@bare
def iter_atom(j, r, i, S, E, T):  # type: ignore[no-untyped-def]
    """Programs without iterative atoms; generated modules define their own."""
    return False


Prog = namedtuple(
    "Prog",
    [
        "kind",
        "sedges",
        "action",
        "target",
        "estage",
        "fcode",
        "fstart",
        "atom_row",
        "agg",
        "ps",
        "ev_int",
        "ev_float",
        "ev_valid",
        "tbase",
        "tatom",
        "toff",
        "tdec",
    ],
)


@bare
def holds(P, e, i, rr, pure, W, S, E, T):  # type: ignore[no-untyped-def]
    """Evaluate edge e's postfix formula for event i and run row rr (atoms cached per run)."""
    cache, fstack = W[7], W[8]
    sp = 0
    for c in range(P.fstart[e], P.fstart[e + 1]):
        code = P.fcode[c]
        if code >= 0:
            row = P.atom_row[code]
            if row >= 0:
                fstack[sp] = pure[row, i]
            else:
                j = -row - 1
                if cache[j] < 0:
                    cache[j] = 1 if iter_atom(j, rr, i, S, E, T) else 0
                fstack[sp] = cache[j] == 1
            sp += 1
        elif code == F_TRUE:
            fstack[sp] = True
            sp += 1
        elif code == F_NOT:
            fstack[sp - 1] = not fstack[sp - 1]
        else:
            b = fstack[sp - 1]
            a = fstack[sp - 2]
            sp -= 1
            fstack[sp - 1] = (a and b) if code == F_AND else (a or b)
    return fstack[sp - 1]


@bare
def final_after_proceed(P, state, i, rr, pure, W, S, E, T):  # type: ignore[no-untyped-def]
    stack = W[6]
    sp = 1
    stack[0] = state
    while sp > 0:
        sp -= 1
        current = stack[sp]
        for e in range(P.sedges[current], P.sedges[current + 1]):
            if P.action[e] == PROCEED and holds(P, e, i, rr, pure, W, S, E, T):
                target = P.target[e]
                if P.kind[target] == FINAL:
                    return target
                stack[sp] = target
                sp += 1
    return -1


@inlined
def step_key(P, S, W, key, ks, i, pure, E, T):  # type: ignore[no-untyped-def]
    """FlinkCEP's process for one event of one key (its row ks of the key table `K`):
    every run, then the start run."""
    R, N, K, M, RT = S[0], S[5], S[9], S[10], S[13]
    newr, pot, edges, dstate, dtake, stack, cache, enode = (
        W[0],
        W[1],
        W[3],
        W[4],
        W[5],
        W[6],
        W[7],
        W[9],
    )
    ts, order = E[3][i], E[7][i]
    nnew = 0
    npot = 0
    ev = -1
    r = K[ks, K_RUNS]
    while True:
        is_start = r < 0
        rr = 0 if is_start else r
        state = P.ps[PS_START] if is_start else R[r, R_STATE]
        ent = table_entry(P, state, is_start, pure, i)
        ne = 0
        nd = 0
        sp = 0
        if ent >= 0:  # decisions precomputed from the pure atoms' bits
            for d in range(P.toff[ent], P.toff[ent + 1]):
                dstate[nd] = P.tdec[d, 0]
                k = P.tdec[d, 1]
                dtake[nd] = k
                nd += 1
                if k >= 0:
                    edges[k] = P.tdec[d, 2]
                    enode[k] = -1
        else:
            for j in range(cache.shape[0]):
                cache[j] = -1
            sp = 1
            stack[0] = state
        while ent < 0 and sp > 0:  # createDecisionGraph
            sp -= 1
            s = stack[sp]
            for e in range(P.sedges[s], P.sedges[s + 1]):
                if holds(P, e, i, rr, pure, W, S, E, T):
                    if P.action[e] == PROCEED:
                        stack[sp] = P.target[e]
                        sp += 1
                    else:
                        edges[ne] = e
                        ne += 1
        discard = False
        for k in range(ne):
            e = edges[k]
            enode[k] = -1
            if P.action[e] == IGNORE:
                if not is_start:
                    dstate[nd] = P.target[e]
                    dtake[nd] = -1
                    nd += 1
                continue
            dstate[nd] = P.target[e]
            dtake[nd] = k
            nd += 1
            final = final_after_proceed(P, P.target[e], i, rr, pure, W, S, E, T)
            if final >= 0:
                dstate[nd] = final
                dtake[nd] = k
                nd += 1
        for d in range(nd):
            if P.kind[dstate[d]] == STOP:
                discard = True
        for d in range(nd):
            kind = P.kind[dstate[d]]
            if kind == STOP or (discard and kind != FINAL):
                continue
            nr = alloc_run(R, M)
            R[nr, R_STATE] = dstate[d]
            k = dtake[d]
            if k < 0:
                copy_run(S, nr, rr)
                R[nr, R_NODE] = R[rr, R_NODE]
            else:
                stage = P.estage[edges[k]]
                if enode[k] < 0:
                    if ev < 0:
                        ev = alloc_event(P, S, E, i)
                    enode[k] = alloc_node(S, stage, R[rr, R_NODE], ev)
                copy_run(S, nr, rr)
                if is_start:
                    RT[nr, T_TS] = ts
                    RT[nr, T_ORD] = order
                R[nr, R_NODE] = enode[k]
                take_into(P, S, E, nr, stage, i)
            if R[nr, R_NODE] >= 0:
                N[R[nr, R_NODE], N_REF] += 1
            if kind == FINAL:
                pot[npot] = nr
                npot += 1
            else:
                newr[nnew] = nr
                nnew += 1
        if is_start:
            break
        nxt = R[r, R_NEXT]
        free_run(S, r)
        r = nxt
    sort_runs(RT, newr, nnew)
    max_runs = P.ps[PS_MAX_RUNS]
    if nnew > max_runs:
        dropped = nnew - max_runs
        for j in range(dropped):
            free_run(S, newr[j])
        for j in range(max_runs):
            newr[j] = newr[j + dropped]
        nnew = max_runs
        M[M_DROPPED] += dropped
    sort_runs(RT, pot, npot)
    if P.ps[PS_SKIP] == NO_SKIP:
        for j in range(npot):
            emit(S, OUT_MATCH, key, pot[j], match_time(P, S, pot[j]), 0, i)
            free_run(S, pot[j])
    elif npot > 0 or K[ks, K_NCOMP] > 0:  # else nothing to emit, nothing held back
        nnew = emit_by_skip(P, S, W, key, ks, npot, nnew, 0, i)
    K[ks, K_RUNS] = link_list(R, newr, 0, nnew)
    K[ks, K_NRUNS] = nnew
    set_due(P, S, ks)


@bare
def run_events(P, S, W, E, T, pure, mask, lo):  # type: ignore[no-untyped-def]
    """Advance and step events lo.. while the state and work arrays have room; returns the
    index of the first event not processed (the caller grows the arrays and calls again)."""
    branch = P.ps[PS_BRANCH]
    keys, streams, times = E[5], E[4], E[3]
    R, N, K, M, OUT, EVR = S[0], S[5], S[9], S[10], S[11], S[12]
    room = W[0].shape[0]
    n = keys.shape[0]
    for i in range(lo, n):
        warm(S, keys, i, n)
        if not mask[streams[i]]:
            continue
        key = keys[i]
        ks = probe_key(K, key)
        nr = 0
        nc = 0
        if ks >= 0:
            nr = K[ks, K_NRUNS]
            nc = K[ks, K_NCOMP]
        elif start_idle(P, pure, i):
            continue  # no state to advance, and the start run takes nothing
        succ = (nr + 1) * 2 * branch
        if (
            R.shape[0] - M[M_LIVE_RUNS] - 1 < succ
            or N.shape[0] - M[M_LIVE_NODES] < succ
            or EVR.shape[0] - M[M_LIVE_EV] < succ
            or OUT.shape[0] - M[M_NOUT] < 2 * (nr + nc + succ) + 4
            or room < nr + nc + succ + 1
            or (ks < 0 and 2 * (M[M_LIVE_KEYS] + 1) > K.shape[0])
        ):
            return i
        if ks < 0:
            ks = take_slot(K, M, ks, key)
        advance_key(P, S, W, key, ks, times[i], 0, i)
        step_key(P, S, W, key, ks, i, pure, E, T)
        release_key(K, M, ks)  # a key left without state leaves the table
    return keys.shape[0]


@njit(cache=True)
def process_events(P, S, E, T, pure, mask):  # type: ignore[no-untyped-def]
    """Run one rule over released events E (in processing order): advance, then step."""
    branch = P.ps[PS_BRANCH]
    keys = E[5]
    S = fit_keys(S)  # shrinks a table that most keys have left
    W = scratch(16, branch, P.ps[PS_STACK], P.ps[PS_N_ITER], P.ps[PS_FORMULA])
    i = run_events(P, S, W, E, T, pure, mask, np.int64(0))  # not a literal: one compile
    while i < keys.shape[0]:
        K = S[9]
        ks = find_key(K, keys[i])
        nr = 0
        nc = 0
        if ks >= 0:
            nr = K[ks, K_NRUNS]
            nc = K[ks, K_NCOMP]
        succ = (nr + 1) * 2 * branch
        S = ensure(S, succ, succ, 2 * (nr + nc + succ) + 4)
        S = grow_keys(S, 1)
        if W[0].shape[0] < nr + nc + succ + 1:
            W = scratch(
                2 * (nr + nc + succ + 1), branch, P.ps[PS_STACK], P.ps[PS_N_ITER], P.ps[PS_FORMULA]
            )
        i = run_events(P, S, W, E, T, pure, mask, i)
    return S


#: Kernels whose source nfa.codegen copies into generated modules (they call iter_atom).
SPECIALISED = (holds, final_after_proceed, step_key, run_events, process_events)
