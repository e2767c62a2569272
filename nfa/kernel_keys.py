"""Per-rule key table of the product engine: key id -> the key's row of `K`, for live keys.

A rule keeps a row only for the keys that have state in it (partial matches, or matches a
skip strategy holds back), so its memory follows its live keys, not the largest key id
seen: with a million keys, short windows or hundreds of rules most key ids have no state
in a given rule at a given time. `K` is an open-addressing hash table (linear probing,
power-of-two capacity) whose slots are the rows themselves (`K_KEY` holds the key id, -1
in an empty slot), so a lookup that hits touches one row, like the direct indexing by key
id it replaces. A row is added when an event may create state for its key and removed
(backward-shift deletion, no tombstones) as soon as the key has none left. The table is
kept at most half full (grown before a kernel would pass that) and shrunk when the most
keys it held over a call fell under an eighth (`fit_keys`); `M[M_LIVE_KEYS]` counts the
used slots.

Rows move when the table is resized or a key is removed, so a kernel holds a row only
while it works on that key; elsewhere it goes by key id (`find_key`), or checks that a
row it noted still holds the key (`row_of`).

Rows in the slots (one load tests the key and reads its state) measured faster on card
testing (about 0.92x the events/s of indexing by key id) than int64 slots pointing into
separately allocated rows (about 0.86x: a second dependent load for every event of a key
with state) or a second, smaller table of counts to skip the lookup (slower still).

Key ids are `StringPool` ids, stored as int32: 0 <= id <= KEY_MAX. `warm` asks the CPU
for the key rows (and their first runs) that the events a few ahead will look up.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from nfa.kernel_intrinsics import prefetch, prefetch_at
from nfa.kernel_store import (
    DUE_NEVER,
    K_COMP,
    K_DUE,
    K_KEY,
    K_NCOMP,
    K_NRUNS,
    K_RUNS,
    KF,
    M_LIVE_KEYS,
    M_PEAK_KEYS,
    MF,
    R_NEXT,
    R_NODE,
    bare,
    empty_keys,
)

KEY_MAX = 2**31 - 2
MIN_KEYS = 16
_MIX = -7046029254386353131  # 2**64 / golden ratio (Fibonacci hashing), as an int64


@bare
def home(K, key):  # type: ignore[no-untyped-def]
    """The slot where key's probe sequence starts (high product bits folded down)."""
    h = key * _MIX
    h ^= h >> 32
    return h & (K.shape[0] - 1)


@bare
def find_key(K, key):  # type: ignore[no-untyped-def]
    """The slot of `key`, or -1 when it has no state."""
    mask = K.shape[0] - 1
    s = home(K, key)
    while True:
        k = K[s, K_KEY]
        if k == key:
            return s
        if k < 0:
            return -1
        s = (s + 1) & mask


@bare
def probe_key(K, key):  # type: ignore[no-untyped-def]
    """The slot of `key`, or -1 - the empty slot where it would go (`take_slot`).

    Most lookups end within two slots; those are decided from both slots' keys at once,
    with one branch instead of a loop's (mispredicted branches were most of a lookup's
    cost on card testing)."""
    mask = K.shape[0] - 1
    s = home(K, key)
    s1 = (s + 1) & mask
    k0 = K[s, K_KEY]
    k1 = K[s1, K_KEY]
    empty0 = k0 < 0
    hit1 = (k1 == key) & ~empty0
    empty1 = (k1 < 0) & ~empty0
    if (k0 == key) | empty0 | hit1 | empty1:
        if k0 == key:
            return s
        if empty0:
            return -1 - s
        return s1 if hit1 else -1 - s1
    s = (s1 + 1) & mask
    while True:
        k = K[s, K_KEY]
        if k == key:
            return s
        if k < 0:
            return -1 - s
        s = (s + 1) & mask


@bare
def take_slot(K, M, probed, key):  # type: ignore[no-untyped-def]
    """Give `key` the empty slot a `probe_key` that missed found (no change in between)."""
    s = -1 - probed
    K[s, K_KEY] = key
    M[M_LIVE_KEYS] += 1
    if M[M_LIVE_KEYS] > M[M_PEAK_KEYS]:
        M[M_PEAK_KEYS] = M[M_LIVE_KEYS]
    return s


@bare
def row_of(K, hint, key):  # type: ignore[no-untyped-def]
    """The row of `key`: `hint` if it still holds it (no removal moved it), else found."""
    if K[hint, K_KEY] == key:
        return hint
    return find_key(K, key)


@bare
def add_key(K, M, key):  # type: ignore[no-untyped-def]
    """The slot of `key`, taking an empty one if it has none (the caller made room)."""
    s = probe_key(K, key)
    if s >= 0:
        return s
    return take_slot(K, M, s, key)


@bare
def release_key(K, M, s):  # type: ignore[no-untyped-def]
    """Remove slot s's key if it has no state left; later slots of its probe run move up
    (backward-shift deletion), so the slots of other keys may change."""
    if K[s, K_NRUNS] > 0 or K[s, K_NCOMP] > 0:
        return
    M[M_LIVE_KEYS] -= 1
    mask = K.shape[0] - 1
    hole = s
    j = s
    while True:
        j = (j + 1) & mask
        k = K[j, K_KEY]
        if k < 0:
            break
        h = home(K, k)
        # the key at j may fill the hole unless its home lies cyclically in (hole, j]
        if (hole <= j and (h <= hole or h > j)) or (hole > j and h <= hole and h > j):
            for c in range(KF):
                K[hole, c] = K[j, c]
            hole = j
    K[hole, K_RUNS] = -1
    K[hole, K_NRUNS] = 0
    K[hole, K_COMP] = -1
    K[hole, K_NCOMP] = 0
    K[hole, K_DUE] = DUE_NEVER
    K[hole, K_KEY] = -1


@njit(cache=True)
def _rehash(K, slots):  # type: ignore[no-untyped-def]
    out = np.zeros((slots, KF), np.int32)
    for s in range(slots):
        out[s, K_RUNS] = -1
        out[s, K_COMP] = -1
        out[s, K_DUE] = DUE_NEVER
        out[s, K_KEY] = -1
    mask = slots - 1
    for s in range(K.shape[0]):
        key = K[s, K_KEY]
        if key < 0:
            continue
        t = home(out, key)
        while out[t, K_KEY] >= 0:
            t = (t + 1) & mask
        for c in range(KF):
            out[t, c] = K[s, c]
    return out


@njit(cache=True)
def grow_keys(S, need):  # type: ignore[no-untyped-def]
    """The state with a key table that takes `need` more keys at most half full (grown by
    doubling)."""
    R, RAI, RAF, RAN, RAO, N, EVI, EVF, EVV, K, M, OUT, EVR, RT, EVT = S
    want = M[M_LIVE_KEYS] + need
    slots = K.shape[0]
    if 2 * want > slots:
        while 2 * want > slots:
            slots *= 2
        K = _rehash(K, slots)
    return (R, RAI, RAF, RAN, RAO, N, EVI, EVF, EVV, K, M, OUT, EVR, RT, EVT)


@njit(cache=True)
def fit_keys(S):  # type: ignore[no-untyped-def]
    """The state with its key table shrunk to at most a quarter full when the most keys
    it held since the last call (M_PEAK_KEYS) fell under an eighth of it. Keys whose runs
    expired stay until a watermark advance removes them, so within a batch a table may
    fill well above what it holds between batches: it is sized for that peak, not shrunk
    at each call and grown again."""
    R, RAI, RAF, RAN, RAO, N, EVI, EVF, EVV, K, M, OUT, EVR, RT, EVT = S
    peak = max(M[M_PEAK_KEYS], M[M_LIVE_KEYS])
    M[M_PEAK_KEYS] = M[M_LIVE_KEYS]
    slots = K.shape[0]
    if slots > MIN_KEYS and 8 * peak < slots:
        while slots > MIN_KEYS and 4 * peak <= slots // 2:
            slots //= 2
        K = _rehash(K, slots)
    return (R, RAI, RAF, RAN, RAO, N, EVI, EVF, EVV, K, M, OUT, EVR, RT, EVT)


def live_keys(S: tuple[Any, ...]) -> npt.NDArray[np.int64]:
    """The ids of the keys with state in this rule (in slot order)."""
    K = S[9]
    return np.asarray(K[K[:, K_KEY] >= 0, K_KEY], np.int64)


def key_row(S: tuple[Any, ...], key: int) -> int:
    """`find_key` from Python (for readers of the state such as `service.collectors`)."""
    if not 0 <= key <= KEY_MAX:
        return -1
    return int(find_key(S[9], np.int64(key)))


def table_from_dense(
    dense: npt.NDArray[np.int32], M: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]:
    """The key table and `M` for a rule state of snapshot format 2, whose `K` had a row per
    key id (the first five columns of today's rows) and whose `M` ended before
    M_LIVE_KEYS."""
    live = np.flatnonzero((dense[:, K_NRUNS] > 0) | (dense[:, K_NCOMP] > 0))
    slots = MIN_KEYS
    while 2 * len(live) > slots:
        slots *= 2
    K = empty_keys(slots)
    counts = np.zeros(MF, np.int64)
    counts[: len(M)] = M
    counts[M_LIVE_KEYS] = 0
    for key in live.tolist():
        slot = add_key(K, counts, np.int64(key))
        K[slot, :K_KEY] = dense[key, :K_KEY]
    return K, counts


#: Events ahead whose key-table row `warm` requests (then runs AHEAD // 2 ahead, nodes
#: AHEAD // 4 ahead). On card testing 8 was 12% slower, stages at 12/8/4 4% slower, 16/8/4
#: the same; a fourth stage (the nodes' event slots) or stages over groups of 4 events
#: were 5-25% slower.
AHEAD = 12


@bare
def head_of(K, key):  # type: ignore[no-untyped-def]
    """The first run of `key` if its row is in one of its first two slots, else -1."""
    s = home(K, key)
    if K[s, K_KEY] == key:
        return K[s, K_RUNS]
    s = (s + 1) & (K.shape[0] - 1)
    if K[s, K_KEY] == key:
        return K[s, K_RUNS]
    return -1


@bare
def warm(S, keys, i, n):  # type: ignore[no-untyped-def]
    """Request the rows that events ahead of i will read, in stages each reading what
    the previous one requested: the key-table row AHEAD events ahead, the first run's rows
    AHEAD // 2 ahead, its node and the second run's rows AHEAD // 4 ahead. Hints only: a
    key whose row moved or whose runs changed in between just gets no use of them."""
    R, N, K, RT = S[0], S[5], S[9], S[13]
    if i + AHEAD < n:
        s = home(K, keys[i + AHEAD])
        prefetch_at(K, s, 0)
        prefetch_at(K, (s + 1) & (K.shape[0] - 1), K_KEY)
    if i + AHEAD // 2 < n:
        r = head_of(K, keys[i + AHEAD // 2])
        if r >= 0:
            prefetch_at(R, r, 0)
            prefetch_at(R, r, R_NEXT)
            prefetch(RT, r)
    if i + AHEAD // 4 < n:
        r = head_of(K, keys[i + AHEAD // 4])
        if r >= 0:
            node = R[r, R_NODE]
            if node >= 0:
                prefetch(N, node)
            r = R[r, R_NEXT]
            if r >= 0:
                prefetch_at(R, r, 0)
                prefetch_at(R, r, R_NEXT)
                prefetch(RT, r)
