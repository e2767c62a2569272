"""The static half of the jitted row pattern matcher: state, arena and helpers.

`nfa.rowpattern_search` holds the half that calls a rule's generated `condition` and
`measures`; this one is compiled (and cached) once for every rule:

- Rows live in an arena (`ints`/`floats`/`valid`, row-major: a row's columns share a
  cache line; plus `seqs`/`tss`);
  each key owns the segment `SEG .. SEG_END` of it, its `N` retained rows at `LO ..`. Trimming
  rows no match can reach moves `LO` forward; a key whose rows reach `SEG_END` shifts them
  back to `SEG` when that frees half the segment, else moves to the arena's top with twice
  the room; a full arena is compacted (keys without rows lose their segment) into one of
  twice what it holds, and at least half a slot per key id so that compactions, which scan
  the key table, stay rare. A snapshot compacts too, which gives a burst's room back.
- Key table `kt[key]` (dense by key id): LO, N, SEG_END, BASE (partition index of the first
  retained row), POS (the next candidate start row), NUMBER (the next MATCH_NUMBER()),
  TOUCHED (the stamp of the last batch that appended to the key), SEG.
- Outputs go to growing arrays (`omet`, `orow`, measures) that Python drains.

State tuple: kt, ints, floats, valid, seqs, tss, meta, omet, okf, orow, omi, omf, omv
(outputs), lab, stk, memo (the search's scratch).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from nfa.kernel_intrinsics import prefetch

# instructions (nfa.rowpattern.Op)
LABEL, SPLIT, JUMP, START, END, BEGIN_EXCLUDE, END_EXCLUDE, DONE = 0, 1, 2, 3, 4, 5, 6, 7
# key table columns
LO, N, SEG_END, BASE, POS, NUMBER, TOUCHED, SEG = 0, 1, 2, 3, 4, 5, 6, 7
KT = 8
# parameters (prm)
P_STREAM, P_WITHIN, P_SKIP, P_HIST_FREE, P_WORDS, P_LOOKBACK = 0, 1, 2, 3, 4, 5
P_KEY_COLUMN, P_EMIT_EMPTY, P_POSITIONAL, P_MEASURES, P_STAMP = 6, 7, 8, 9, 10
P_ABSENT, P_GAP_LABEL = 11, 12  # NOT FOLLOWED BY's variable (-1: none), the gap label
P_ALL_ROWS = 13  # ALL ROWS PER MATCH: an output per match row, its fields after measures
N_PARAMS = 14
# skip kinds (nfa.rowpattern_run.Skip)
SKIP_PAST_LAST, SKIP_NEXT_ROW, SKIP_TO_FIRST, SKIP_TO_LAST = 0, 1, 2, 3
# search results (and NEED_STACK)
NONE, MATCH, PENDING = 0, 1, 2
# meta
M_TOP, M_OUT, M_ROWS, M_STAMP, M_WANT = 0, 1, 2, 3, 4
META = 5
# prefetch distances (events or keys ahead): key rows first, their arena rows later
AHEAD_KEY, AHEAD_ROW = 16, 8
# decide_key's answers: done, or which scratch or output array to grow first
DONE_KEY, NEED_OUTPUTS, NEED_ROWS, NEED_LABELS, NEED_MEMO, NEED_STACK = 0, 1, 2, 3, 4, 5
# output columns (omet)
O_KEY, O_TIME, O_LEN, O_ROW, O_KEY_INT, O_KEY_VALID, O_EVENT, O_NUMBER = 0, 1, 2, 3, 4, 5, 6, 7
OM = 8


def new_state(n_columns: int, n_words: int, n_measures: int) -> tuple[np.ndarray, ...]:
    """An empty state: no keys, a small arena, empty outputs and scratch."""
    arena = 1024
    return (
        np.zeros((0, KT), np.int64),
        np.zeros((arena, n_columns), np.int64),
        np.zeros((arena, n_columns), np.float64),
        np.zeros((arena, n_columns), np.bool_),
        np.zeros(arena, np.int64),
        np.zeros(arena, np.int64),
        np.zeros(META, np.int64),
        *new_outputs(n_measures),
        np.zeros(64, np.int64),
        np.zeros((64, 2 + n_words), np.int64),
        np.zeros(256, np.int64),
    )


def new_outputs(n_measures: int) -> tuple[np.ndarray, ...]:
    """Empty output arrays (omet, okf, orow, omi, omf, omv): at first, and to give the room
    of a burst of outputs back once they are drained."""
    return (
        np.zeros((64, OM), np.int64),
        np.zeros(64, np.float64),
        np.zeros((256, 3), np.int64),
        np.zeros((64, max(n_measures, 1)), np.int64),
        np.zeros((64, max(n_measures, 1)), np.float64),
        np.zeros((64, max(n_measures, 1)), np.bool_),
    )


@nb.njit(cache=True)
def grow2(a, rows):  # type: ignore[no-untyped-def]
    out = np.zeros((rows, a.shape[1]), a.dtype)
    out[: a.shape[0]] = a
    return out


@nb.njit(cache=True)
def grow1(a, size):  # type: ignore[no-untyped-def]
    out = np.zeros(size, a.dtype)
    out[: a.shape[0]] = a
    return out


@nb.njit(cache=True)
def bisect_time(tss, lo, hi, limit):  # type: ignore[no-untyped-def]
    """The first slot in `lo .. hi` whose time is at least `limit` (`hi` if none)."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if tss[mid] < limit:
            lo = mid + 1
        else:
            hi = mid
    return lo


@nb.njit(cache=True)
def next_position(code, prm, skip_mask, lab, start, mlen):  # type: ignore[no-untyped-def]
    """`nfa.rowpattern_run.next_position`; a failed AFTER MATCH SKIP TO goes on at the
    next row, as `nfa.rowpattern_key.decide` does."""
    skip = prm[P_SKIP]
    if skip == SKIP_NEXT_ROW or mlen == 0:
        return start + 1
    if skip == SKIP_PAST_LAST:
        return start + mlen
    target = -1
    for i in range(mlen):
        if skip_mask[lab[i]]:
            target = start + i
            if skip == SKIP_TO_FIRST:
                break
    if target < 0 or target == start:
        return start + 1
    return target


@nb.njit(cache=True, inline="always")
def _copy_rows(src, dst, n, ints, floats, valid, seqs, tss, ints2, floats2, valid2, seqs2, tss2):  # type: ignore[no-untyped-def]
    """Rows `src .. src+n-1` to `dst ..` (ascending: safe for dst < src in one arena)."""
    for i in range(n):
        for c in range(ints.shape[1]):
            ints2[dst + i, c] = ints[src + i, c]
            floats2[dst + i, c] = floats[src + i, c]
            valid2[dst + i, c] = valid[src + i, c]
        seqs2[dst + i] = seqs[src + i]
        tss2[dst + i] = tss[src + i]


@nb.njit(cache=True)
def compact_arena(state, extra):  # type: ignore[no-untyped-def]
    """A new arena holding every key's rows with room to grow, and `extra` free slots."""
    (kt, ints, floats, valid, seqs, tss, meta, omet, okf, orow, omi, omf, omv, lab, stk, memo) = (
        state
    )
    need = extra
    for k in range(kt.shape[0]):
        if kt[k, N] > 0:
            need += kt[k, N] + (kt[k, N] >> 1) + 4
    # room for new keys' segments between compactions (each scans the key table), and it
    # may shrink: after a burst, at a snapshot
    size = max(2 * need, kt.shape[0] // 2, 1024)
    c = ints.shape[1]
    ints2 = np.zeros((size, c), np.int64)
    floats2 = np.zeros((size, c), np.float64)
    valid2 = np.zeros((size, c), np.bool_)
    seqs2 = np.zeros(size, np.int64)
    tss2 = np.zeros(size, np.int64)
    top = 0
    for k in range(kt.shape[0]):
        n = kt[k, N]
        if n == 0:
            kt[k, LO], kt[k, SEG], kt[k, SEG_END] = 0, 0, 0
            continue
        _copy_rows(
            kt[k, LO], top, n, ints, floats, valid, seqs, tss, ints2, floats2, valid2, seqs2, tss2
        )
        kt[k, LO], kt[k, SEG], kt[k, SEG_END] = top, top, top + n + (n >> 1) + 4
        top = kt[k, SEG_END]
    meta[M_TOP] = top
    return (kt, ints2, floats2, valid2, seqs2, tss2, meta, omet, okf, orow, omi, omf, omv, lab, stk, memo)  # fmt: skip


@nb.njit(cache=True)
def compact(state):  # type: ignore[no-untyped-def]
    """The state with its arena compacted: every key's rows from slot 0 on, in key order."""
    return compact_arena(state, 0)


@nb.njit(cache=True, inline="always")
def append_row(  # type: ignore[no-untyped-def]
    kt, ints, floats, valid, seqs, tss, meta, colmap, key, ev_floats, ev_ints, ev_valid, ts, seq, i
):
    """Append event `i` to `key`'s rows (shifting or moving them when their segment is
    full); False, with nothing appended, when the arena has no room left for the move."""
    n = kt[key, N]
    if kt[key, LO] + n == kt[key, SEG_END]:
        lo, seg = kt[key, LO], kt[key, SEG]
        if lo > seg and 2 * n <= kt[key, SEG_END] - seg:  # half the segment free: shift back
            _copy_rows(lo, seg, n, ints, floats, valid, seqs, tss, ints, floats, valid, seqs, tss)
            kt[key, LO] = seg
        else:
            room = max(4, 2 * n)
            top = meta[M_TOP]
            if top + room > ints.shape[0]:
                return False
            _copy_rows(lo, top, n, ints, floats, valid, seqs, tss, ints, floats, valid, seqs, tss)
            kt[key, LO], kt[key, SEG], kt[key, SEG_END] = top, top, top + room
            meta[M_TOP] = top + room
    slot = kt[key, LO] + n
    for c in range(colmap.shape[0]):
        source, slot_in, is_float = colmap[c, 0], colmap[c, 1], colmap[c, 2]
        ok = ev_valid[source, i]
        valid[slot, c] = ok
        if is_float:
            floats[slot, c] = ev_floats[slot_in, i] if ok else 0.0
        else:
            ints[slot, c] = ev_ints[slot_in, i] if ok else 0
    seqs[slot] = seq
    tss[slot] = ts
    kt[key, N] = n + 1
    return True


@nb.njit(cache=True, inline="always")
def warm_slot(kt, ints, floats, valid, seqs, tss, key, row):  # type: ignore[no-untyped-def]
    """Prefetch the arena lines of `key`'s local row `row`, or with -1 of the slot its next
    row goes to (its key row was prefetched earlier)."""
    slot = min(kt[key, LO] + kt[key, N] if row < 0 else kt[key, LO] + row, ints.shape[0] - 1)
    prefetch(ints, slot)
    prefetch(floats, slot)
    prefetch(valid, slot)
    prefetch(seqs, slot)
    prefetch(tss, slot)


@nb.njit(cache=True)
def append_events(  # type: ignore[no-untyped-def]
    state,
    prm,
    colmap,
    ev_floats,
    ev_ints,
    ev_valid,
    ev_ts,
    ev_stream,
    ev_key,
    ev_seq,
    first,
    stop,
    now,
    ended,
):
    """(state, keys to decide): events `first .. stop-1` of the rule's stream appended to
    their keys; the keys are those they touched, for windowed rules also those whose
    candidate's window `now` closed, and at the end every key with rows; in key order."""
    stream = prm[P_STREAM]
    kmax = state[0].shape[0]
    for i in range(first, stop):
        if ev_stream[i] == stream and ev_key[i] >= kmax:
            kmax = ev_key[i] + 1
    if kmax > state[0].shape[0]:
        grown = grow2(state[0], max(kmax, 2 * state[0].shape[0]))
        for k in range(state[0].shape[0], grown.shape[0]):
            grown[k, NUMBER] = 1
        state = (grown,) + state[1:]  # noqa: RUF005  (Numba: no starred tuples)
    state[6][M_STAMP] += 1
    stamp = state[6][M_STAMP]
    touched = np.zeros(16, np.int64)
    count = 0
    kt, ints, floats, valid, seqs, tss, meta = state[:7]
    for i in range(first, stop):
        if ev_stream[i] != stream:
            continue
        if i + AHEAD_KEY < stop:  # staged prefetch: the key row, then its next free slot
            prefetch(kt, ev_key[i + AHEAD_KEY] if ev_stream[i + AHEAD_KEY] == stream else 0)
        if i + AHEAD_ROW < stop and ev_stream[i + AHEAD_ROW] == stream:
            warm_slot(kt, ints, floats, valid, seqs, tss, ev_key[i + AHEAD_ROW], -1)
        key = ev_key[i]
        while not append_row(
            kt,
            ints,
            floats,
            valid,
            seqs,
            tss,
            meta,
            colmap,
            key,
            ev_floats,
            ev_ints,
            ev_valid,
            ev_ts[i],
            ev_seq[i],
            i,
        ):
            state = compact_arena(state, max(4, 2 * kt[key, N]))
            kt, ints, floats, valid, seqs, tss, meta = state[:7]
        if kt[key, TOUCHED] != stamp:
            kt[key, TOUCHED] = stamp
            if count == touched.shape[0]:
                touched = grow1(touched, 2 * count)
            touched[count] = key
            count += 1
    kt, tss = state[0], state[5]
    if ended:
        return state, np.flatnonzero(kt[:, N] > 0)
    within = prm[P_WITHIN]
    if within < 0:
        return state, np.sort(touched[:count])
    # windowed: also every key whose candidate's window closed by `now` (an untouched key
    # whose window is still open would give the same undecided answer again)
    due = np.zeros(kt.shape[0], np.bool_)
    for k in range(kt.shape[0]):
        pos, n = kt[k, POS], kt[k, N]
        due[k] = kt[k, TOUCHED] == stamp or (pos < n and now >= tss[kt[k, LO] + pos] + within)
    return state, np.flatnonzero(due)
