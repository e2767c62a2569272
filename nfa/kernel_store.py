"""The array storage of the product engine's per-rule state, and its jitted helpers.

One rule's state is a tuple of numpy arrays (`State`), so the step kernel takes arrays, a
snapshot is a list of arrays and nothing per event or per partial match is a Python object:

- runs (FlinkCEP's computation states) are rows of `R` (int32: state, pointer to the node
  of the last taken event, list link) and `RT` (int64: start time, start order), with
  their aggregate slots in `RAI`/`RAF`/`RAN`/`RAO` (int value, float value, count,
  value-is-not-null; sized per rule by `nfa.kernel_layout`). Row 0 is the empty run that
  stands for the implicit start run. Free rows form a list through R_NEXT.
- taken events live in a shared tree of nodes `N` (stage, parent, refcount, event slot),
  so successors of a run share its history instead of copying it. A node is freed when its
  refcount drops to zero (no run, child or pending output uses it); free nodes are listed
  through N_PARENT.
- taken events are kept once (time, sequence, order in `EVT`; the columns outputs and
  `count_distinct` read in `EVI`/`EVF`/`EVV`), refcounted by nodes in `EVR`.
- per key `K`: head and length of its run list (priority order) and of its completed list
  (matches a skip strategy holds back), when its first run's window closes (K_DUE), so a
  watermark advance visits only keys that may have expired, and the key id (K_KEY). Only
  keys with state in the rule have a row: `K` is a hash table on the key id
  (`nfa.kernel_keys`).
- `OUT` collects outputs (kind, key, node, time, phase, tag) until the driver reads them.
- `M` holds the free-list heads and counts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from nfa.kernel_intrinsics import prefetch, prefetch_at

_njit: Any = njit


def bare(fn: Callable[..., Any]) -> Any:
    """Jit without reference counting: for kernels that only index arrays they are given
    (no allocation, no slicing copies). Counting every array taken out of the state tuples
    was most of the step kernel's time."""
    return _njit(cache=True, _nrt=False)(fn)


def inlined(fn: Callable[..., Any]) -> Any:
    """`bare`, and inlined into its callers (Numba IR): for kernels called per event that
    LLVM left as calls, each of which passed every array of the tuples it was given on the
    stack (inlining `step_key`, `advance_key`'s check and `copy_run` made card testing's
    step kernel about 1.8x as fast). Only from `bare` callers: inlined into a counting
    one, every array taken from a tuple would be counted."""
    return _njit(cache=True, _nrt=False, inline="always")(fn)


def counted(fn: Callable[..., Any]) -> Any:
    """Jit with reference counting even when called from a `bare` kernel (allocates)."""
    return _njit(cache=True, _nrt=True)(fn)


R_STATE, R_NODE, R_NEXT = 0, 1, 2  # R (int32)
RF = 3
T_TS, T_ORD = 0, 1  # RT (int64): a run's start time and start order
TF = 2
N_STAGE, N_PARENT, N_REF, N_EV = 0, 1, 2, 3  # a free node's N_PARENT links the free list
NF = 4
V_REF, V_NEXT = 0, 1  # EVR (int32)
VF = 2
V_TS, V_SEQ, V_ORD = 0, 1, 2  # EVT (int64): a stored event's time, sequence and order
VTF = 3
K_RUNS, K_NRUNS, K_COMP, K_NCOMP, K_DUE, K_KEY = 0, 1, 2, 3, 4, 5  # K (int32)
KF = 6
#: K_DUE: a lower bound of the time its first run's window closes, in units of
#: 2**DUE_SHIFT ms, clipped to int32 (DUE_NEVER: no run); see `nfa.kernel_skip.set_due`.
DUE_SHIFT = 12
DUE_NEVER = 2**31 - 1
DUE_LO, DUE_HI = -(2**31) + 1, 2**31 - 2
O_KIND, O_KEY, O_NODE, O_TIME, O_PHASE, O_TAG = 0, 1, 2, 3, 4, 5
OF = 6
M_FREE_RUN, M_FREE_NODE, M_LIVE_RUNS, M_LIVE_NODES, M_DROPPED, M_NOUT = 0, 1, 2, 3, 4, 5
M_FREE_EV, M_LIVE_EV, M_LIVE_KEYS, M_PEAK_KEYS = 6, 7, 8, 9
MF = 10

OUT_MATCH = 0
OUT_TIMEOUT = 1


def empty_keys(slots: int) -> npt.NDArray[np.int32]:
    """An empty key table (`nfa.kernel_keys`) of `slots` (a power of two) rows."""
    K = np.zeros((slots, KF), np.int32)
    K[:, K_RUNS] = -1
    K[:, K_COMP] = -1
    K[:, K_DUE] = DUE_NEVER
    K[:, K_KEY] = -1
    return K


def new_state(
    aggs: tuple[int, int, int, int],
    columns: tuple[int, int, int],
    runs: int = 64,
    nodes: int = 64,
    keys: int = 16,
) -> tuple:  # type: ignore[type-arg]
    """Empty state arrays for a rule with `aggs` (int, float, count, not-null) aggregate
    slots and `columns` (int, float, valid) stored event columns (`nfa.kernel_layout`);
    `keys` (a power of two) rows in the key table."""
    n_ai, n_af, n_an, n_ao = aggs
    n_int, n_float, n_col = columns
    R = np.zeros((runs, RF), np.int32)
    R[:, R_NEXT] = np.arange(1, runs + 1)
    R[runs - 1, R_NEXT] = -1
    R[0, R_NODE] = -1  # row 0: the empty start run, never on the free list
    R[0, R_NEXT] = -1
    N = np.zeros((nodes, NF), np.int32)
    N[:, N_PARENT] = np.arange(1, nodes + 1)
    N[nodes - 1, N_PARENT] = -1
    K = empty_keys(keys)  # `nfa.kernel_keys`
    M = np.zeros(MF, np.int64)
    M[M_FREE_RUN] = 1 if runs > 1 else -1
    M[M_FREE_NODE] = 0
    EVR = np.zeros((nodes, VF), np.int32)
    EVR[:, V_NEXT] = np.arange(1, nodes + 1)
    EVR[nodes - 1, V_NEXT] = -1
    M[M_FREE_EV] = 0
    return (
        R,
        np.zeros((runs, n_ai), np.int64),
        np.zeros((runs, n_af), np.float64),
        np.zeros((runs, n_an), np.int32),
        np.zeros((runs, n_ao), np.bool_),
        N,
        np.zeros((nodes, n_int), np.int64),
        np.zeros((nodes, n_float), np.float64),
        np.zeros((nodes, n_col), np.bool_),
        K,
        M,
        np.zeros((64, OF), np.int64),
        EVR,
        np.zeros((runs, TF), np.int64),
        np.zeros((nodes, VTF), np.int64),
    )


@njit(cache=True)
def grow_rows(a, rows):  # type: ignore[no-untyped-def]
    """A copy of 2-D array `a` with `rows` rows (zero filled)."""
    out = np.zeros((rows, a.shape[1]), a.dtype)
    out[: a.shape[0]] = a
    return out


@njit(cache=True)
def ensure(S, need_runs, need_nodes, need_out):  # type: ignore[no-untyped-def]
    """The state with room for that many more runs, nodes and outputs (keys:
    `nfa.kernel_keys.grow_keys`)."""
    R, RAI, RAF, RAN, RAO, N, EVI, EVF, EVV, K, M, OUT, EVR, RT, EVT = S
    cap = R.shape[0]
    if cap - M[M_LIVE_RUNS] - 1 < need_runs:
        new = max(cap + cap // 2, cap + need_runs + 16)
        R, RT = grow_rows(R, new), grow_rows(RT, new)
        RAI, RAF = grow_rows(RAI, new), grow_rows(RAF, new)
        RAN, RAO = grow_rows(RAN, new), grow_rows(RAO, new)
        for r in range(cap, new - 1):
            R[r, R_NEXT] = r + 1
        R[new - 1, R_NEXT] = M[M_FREE_RUN]
        M[M_FREE_RUN] = cap
    cap = N.shape[0]
    if cap - M[M_LIVE_NODES] < need_nodes:
        new = max(cap + cap // 2, cap + need_nodes + 16)
        N = grow_rows(N, new)
        for n in range(cap, new - 1):
            N[n, N_PARENT] = n + 1
        N[new - 1, N_PARENT] = M[M_FREE_NODE]
        M[M_FREE_NODE] = cap
    cap = EVR.shape[0]
    if cap - M[M_LIVE_EV] < need_nodes:
        new = max(cap + cap // 2, cap + need_nodes + 16)
        EVR, EVT = grow_rows(EVR, new), grow_rows(EVT, new)
        EVI, EVF, EVV = grow_rows(EVI, new), grow_rows(EVF, new), grow_rows(EVV, new)
        for n in range(cap, new - 1):
            EVR[n, V_NEXT] = n + 1
        EVR[new - 1, V_NEXT] = M[M_FREE_EV]
        M[M_FREE_EV] = cap
    if OUT.shape[0] - M[M_NOUT] < need_out:
        OUT = grow_rows(OUT, max(2 * OUT.shape[0], M[M_NOUT] + need_out + 16))
    return (R, RAI, RAF, RAN, RAO, N, EVI, EVF, EVV, K, M, OUT, EVR, RT, EVT)


@bare
def alloc_run(R, M):  # type: ignore[no-untyped-def]
    """A free run row (the caller made room). The next free row's line is requested now:
    the free list is in release order, so its rows are rarely still in the cache."""
    r = M[M_FREE_RUN]
    nxt = R[r, R_NEXT]
    M[M_FREE_RUN] = nxt
    M[M_LIVE_RUNS] += 1
    R[r, R_NEXT] = -1
    if nxt >= 0:
        prefetch(R, nxt)
    return r


@bare
def decref(S, node):  # type: ignore[no-untyped-def]
    """Drop one reference to `node`; free it and, transitively, its unreferenced ancestors
    (and the event slots no node refers to any more)."""
    N, M, EVR = S[5], S[10], S[12]
    while node >= 0:
        N[node, N_REF] -= 1
        if N[node, N_REF] > 0:
            return
        parent = N[node, N_PARENT]
        N[node, N_PARENT] = M[M_FREE_NODE]
        M[M_FREE_NODE] = node
        M[M_LIVE_NODES] -= 1
        ev = N[node, N_EV]
        EVR[ev, V_REF] -= 1
        if EVR[ev, V_REF] == 0:
            EVR[ev, V_NEXT] = M[M_FREE_EV]
            M[M_FREE_EV] = ev
            M[M_LIVE_EV] -= 1
        node = parent


@bare
def free_run(S, r):  # type: ignore[no-untyped-def]
    R, M = S[0], S[10]
    decref(S, R[r, R_NODE])
    R[r, R_NEXT] = M[M_FREE_RUN]
    M[M_FREE_RUN] = r
    M[M_LIVE_RUNS] -= 1


@bare
def alloc_event(P, S, E, i):  # type: ignore[no-untyped-def]
    """A slot holding event i's stored column values (refcount 0 until a node takes it)."""
    EVI, EVF, EVV, M, EVR, EVT = S[6], S[7], S[8], S[10], S[12], S[14]
    ev = M[M_FREE_EV]
    nxt = EVR[ev, V_NEXT]
    M[M_FREE_EV] = nxt
    M[M_LIVE_EV] += 1
    if nxt >= 0:  # the next free slot's lines (see `alloc_run`)
        prefetch(EVR, nxt)
        prefetch(EVT, nxt)
        prefetch_at(EVT, nxt, V_ORD)
    EVR[ev, V_REF] = 0
    EVT[ev, V_TS] = E[3][i]
    EVT[ev, V_SEQ] = E[6][i]
    EVT[ev, V_ORD] = E[7][i]
    fl, it, va = E[0], E[1], E[2]
    for c in range(EVI.shape[1]):
        EVI[ev, c] = it[P.ev_int[c], i]
    for c in range(EVF.shape[1]):
        EVF[ev, c] = fl[P.ev_float[c], i]
    for c in range(EVV.shape[1]):
        EVV[ev, c] = va[P.ev_valid[c], i]
    return ev


@bare
def alloc_node(S, stage, parent, ev):  # type: ignore[no-untyped-def]
    N, M, EVR = S[5], S[10], S[12]
    EVR[ev, V_REF] += 1
    n = M[M_FREE_NODE]
    nxt = N[n, N_PARENT]
    M[M_FREE_NODE] = nxt
    M[M_LIVE_NODES] += 1
    if nxt >= 0:  # see `alloc_run`
        prefetch(N, nxt)
    N[n, N_STAGE] = stage
    N[n, N_PARENT] = parent
    N[n, N_REF] = 0
    N[n, N_EV] = ev
    if parent >= 0:
        N[parent, N_REF] += 1
    return n


@bare
def before(RT, a, b):  # type: ignore[no-untyped-def]
    """Whether run a has strictly higher priority (earlier start) than run b."""
    if RT[a, T_TS] != RT[b, T_TS]:
        return RT[a, T_TS] < RT[b, T_TS]
    return RT[a, T_ORD] < RT[b, T_ORD]


@bare
def sort_runs(RT, runs, n):  # type: ignore[no-untyped-def]
    """Stable insertion sort of runs[:n] by priority (lists are almost sorted already)."""
    for i in range(1, n):
        x = runs[i]
        j = i - 1
        while j >= 0 and before(RT, x, runs[j]):
            runs[j + 1] = runs[j]
            j -= 1
        runs[j + 1] = x


@bare
def load_list(R, head, out):  # type: ignore[no-untyped-def]
    n = 0
    r = head
    while r >= 0:
        out[n] = r
        n += 1
        r = R[r, R_NEXT]
    return n


@bare
def link_list(R, runs, lo, hi):  # type: ignore[no-untyped-def]
    """Link runs[lo:hi] in order; returns the head (-1 when empty)."""
    for j in range(lo, hi - 1):
        R[runs[j], R_NEXT] = runs[j + 1]
    if hi > lo:
        R[runs[hi - 1], R_NEXT] = -1
        return runs[lo]
    return -1


@bare
def emit(S, kind, key, r, time, phase, tag):  # type: ignore[no-untyped-def]
    """Append an output for run r; the output holds a reference to the run's last node."""
    R, N, M, OUT = S[0], S[5], S[10], S[11]
    o = M[M_NOUT]
    node = R[r, R_NODE]
    OUT[o, O_KIND] = kind
    OUT[o, O_KEY] = key
    OUT[o, O_NODE] = node
    OUT[o, O_TIME] = time
    OUT[o, O_PHASE] = phase
    OUT[o, O_TAG] = tag
    if node >= 0:
        N[node, N_REF] += 1
    M[M_NOUT] = o + 1


@njit(cache=True)
def drain_outputs(S):  # type: ignore[no-untyped-def]
    """The pending outputs' events: offsets, (stage, seq, ts) and column values (int,
    float, valid), releasing the outputs' node references."""
    N, EVI, EVF, EVV, M, OUT, EVT = S[5], S[6], S[7], S[8], S[10], S[11], S[14]
    n = M[M_NOUT]
    offsets = np.zeros(n + 1, np.int64)
    for o in range(n):
        length = 0
        node = OUT[o, O_NODE]
        while node >= 0:
            length += 1
            node = N[node, N_PARENT]
        offsets[o + 1] = offsets[o] + length
    ev = np.zeros((3, offsets[n]), np.int64)
    vi = np.zeros((offsets[n], EVI.shape[1]), np.int64)
    vf = np.zeros((offsets[n], EVF.shape[1]), np.float64)
    vv = np.zeros((offsets[n], EVV.shape[1]), np.bool_)
    for o in range(n):
        j = offsets[o + 1] - 1
        node = OUT[o, O_NODE]
        while node >= 0:
            ev[0, j] = N[node, N_STAGE]
            slot = N[node, N_EV]
            ev[1, j] = EVT[slot, V_SEQ]
            ev[2, j] = EVT[slot, V_TS]
            vi[j] = EVI[slot]
            vf[j] = EVF[slot]
            vv[j] = EVV[slot]
            j -= 1
            node = N[node, N_PARENT]
        decref(S, OUT[o, O_NODE])
    out = OUT[:n].copy()
    M[M_NOUT] = 0
    return out, offsets, ev, vi, vf, vv
