"""The half of the jitted row pattern matcher that calls a rule's conditions.

This module is a template: `nfa.rowpattern_jit` appends the rule's `condition` and
`measures` functions (generated from the checked expression trees by
`nfa.rowpattern_codegen`) to this source and imports the result as the rule's module, so
the search below calls the rule's own conditions (the stubs at the end only make this
file importable). The arena, key table and helpers are in `nfa.rowpattern_kernel`.

It is `nfa.rowpattern.search` and `nfa.rowpattern_key.decide` for ONE ROW PER MATCH:

- `search` is the depth-first search in preference order with an explicit stack: a LABEL
  writes its label into the path's `lab` array (threads forked at row p share the path's
  labels before p, so one array serves every thread) and asks `condition`; SPLIT pushes its
  less preferred branch with the thread's visited set (a bitset of SPLIT/JUMP
  instructions passed since the last row; coming back to one without consuming a row
  kills the thread); history-free programs merge threads at (instruction, row) right after
  a row was consumed (`memo`, stamped per search), which keeps `(A+)+ B` polynomial.
  Exclusion marks only matter for ALL ROWS PER MATCH, which stays on the Python engine.
- `decide_key` runs it at the key's candidate row while the answer is final (not PENDING),
  emits the match with its measures and moves on by AFTER MATCH SKIP; `step` appends
  released events and decides the keys they touched.
"""

from __future__ import annotations

import math  # noqa: F401  (the generated functions appended to this source use it)

import numba as nb
import numpy as np

from nfa.kernel_intrinsics import prefetch
from nfa.rowpattern_kernel import (
    AHEAD_KEY,
    AHEAD_ROW,
    BASE,
    BEGIN_EXCLUDE,
    DONE_KEY,
    END,
    END_EXCLUDE,
    JUMP,
    LABEL,
    LO,
    M_OUT,
    M_ROWS,
    M_WANT,
    MATCH,
    NEED_LABELS,
    NEED_MEMO,
    NEED_OUTPUTS,
    NEED_ROWS,
    NEED_STACK,
    NONE,
    NUMBER,
    O_EVENT,
    O_KEY,
    O_KEY_INT,
    O_KEY_VALID,
    O_LEN,
    O_NUMBER,
    O_ROW,
    O_TIME,
    P_ABSENT,
    P_ALL_ROWS,
    P_EMIT_EMPTY,
    P_GAP_LABEL,
    P_HIST_FREE,
    P_KEY_COLUMN,
    P_LOOKBACK,
    P_MEASURES,
    P_POSITIONAL,
    P_STAMP,
    P_WITHIN,
    P_WORDS,
    PENDING,
    POS,
    SEG,
    SPLIT,
    START,
    N,
    append_events,
    bisect_time,
    grow1,
    grow2,
    next_position,
    warm_slot,
)


@nb.njit(cache=True, inline="always")
def search(  # type: ignore[no-untyped-def]
    code, prm, lab, stk, memo, visited, start, size, n, closed, ended, origin, ints, floats,
    valid, lo, number, strs,
):  # fmt: skip
    """(result, match length): the preferred match at row `start` over rows
    `start .. size-1` (`closed`: no row of the window may follow `size-1`; `ended`: no row at
    all, for NEXT in conditions), or NEED_STACK when `stk` is full. `lab` must hold
    `size - start + 1` labels and (history-free programs) `memo` instructions x that."""
    words = prm[P_WORDS]
    span = size - start + 1
    hist_free = prm[P_HIST_FREE] != 0
    prm[P_STAMP] += 1
    stamp = prm[P_STAMP]
    depth = 0
    pc, pos = 0, start
    for w in range(words):
        visited[w] = 0
    fresh = True  # the visited set is empty
    while True:
        alive = True
        while alive:
            if hist_free and fresh:
                m = pc * span + pos - start
                if memo[m] == stamp:
                    break
                memo[m] = stamp
            op = code[pc, 0]
            if op == LABEL:
                if pos >= size:
                    if not closed:
                        return PENDING, 0
                    break
                label = code[pc, 1]
                lab[pos - start] = label
                verdict = condition(
                    label, start, pos, lab, ints, floats, valid, lo, n, ended, number, strs
                )
                if verdict == 2:
                    return PENDING, 0
                if verdict == 0:
                    break
                pc += 1
                pos += 1
                if not fresh:
                    for w in range(words):
                        visited[w] = 0
                    fresh = True
            elif op in (SPLIT, JUMP):
                word, bit = pc >> 6, np.int64(1) << (pc & 63)
                if visited[word] & bit:
                    break  # an empty iteration: do not loop again
                visited[word] |= bit
                fresh = False
                if op == SPLIT:
                    if depth == stk.shape[0]:
                        return NEED_STACK, 0
                    stk[depth, 0] = code[pc, 2]
                    stk[depth, 1] = pos
                    for w in range(words):
                        stk[depth, 2 + w] = visited[w]
                    depth += 1
                pc = code[pc, 1]
            elif op == START:
                if pos != origin:
                    break
                pc += 1
            elif op == END:
                if pos == size and not closed:
                    return PENDING, 0
                if pos != size:
                    break
                pc += 1
            elif op in (BEGIN_EXCLUDE, END_EXCLUDE):
                pc += 1
            else:
                return MATCH, pos - start
        if depth == 0:
            return NONE, 0
        depth -= 1
        pc = stk[depth, 0]
        pos = stk[depth, 1]
        fresh = True
        for w in range(words):
            visited[w] = stk[depth, 2 + w]
            if visited[w] != 0:
                fresh = False


@nb.njit(cache=True, inline="always")
def absent(  # type: ignore[no-untyped-def]
    code, prm, lab, start, end, stop, n, now, limit, ended, ints, floats, valid, lo, number, strs
):
    """`nfa.rowpattern_key._absent` for the match `start .. end-1`: MATCH when no row of its
    window (`end .. stop-1`) satisfies the NOT FOLLOWED BY variable and the window closed,
    NONE when one does, PENDING when undecided. Rows between the match and a candidate
    get the nameless gap label (one past the variables)."""
    variable, gap = prm[P_ABSENT], prm[P_GAP_LABEL]
    for j in range(end, stop):
        for i in range(end, j):
            lab[i - start] = gap
        lab[j - start] = variable
        verdict = condition(
            variable, start, j, lab, ints, floats, valid, lo, n, ended, number, strs
        )
        if verdict == 2:
            return PENDING
        if verdict == 1:
            return NONE
    if ended or stop < n or now >= limit:
        return MATCH
    return PENDING


@nb.njit(cache=True, inline="always")
def decide_key(  # type: ignore[no-untyped-def]
    kt, ints, floats, valid, seqs, tss, meta, omet, okf, orow, omi, omf, omv, lab, stk, memo,
    visited, code, prm, skip_mask, key, now, ended, event, strs,
):  # fmt: skip
    """Every match of `key` that rows still to come cannot change (`decide`): DONE, or the
    array the caller must grow (to at least `meta[M_WANT]`) before calling again, which
    goes on where this call stopped."""
    lo, n = kt[key, LO], kt[key, N]
    pos = kt[key, POS]
    within = prm[P_WITHIN]
    while pos < n:
        size, closed, limit = n, ended, 0
        if within >= 0:
            limit = tss[lo + pos] + within
            size = bisect_time(tss, lo + pos, lo + n, limit) - lo
            closed = ended or size < n or now >= limit
        if lab.shape[0] < size - pos + 1:
            kt[key, POS], meta[M_WANT] = pos, size - pos + 1
            return NEED_LABELS
        if prm[P_HIST_FREE] and memo.shape[0] < code.shape[0] * (size - pos + 1):
            kt[key, POS], meta[M_WANT] = pos, code.shape[0] * (size - pos + 1)
            return NEED_MEMO
        found, mlen = search(
            code, prm, lab, stk, memo, visited, pos, size, n, closed, ended, -kt[key, BASE],
            ints, floats, valid, lo, kt[key, NUMBER], strs,
        )  # fmt: skip
        if found == NEED_STACK:
            kt[key, POS] = pos
            return NEED_STACK
        if found == PENDING:
            break
        if found == NONE:
            pos += 1
            continue
        end = pos + mlen
        time = tss[lo + end - 1] if mlen > 0 else tss[lo + pos]
        if prm[P_ABSENT] >= 0:
            stop = bisect_time(tss, lo + end, lo + n, limit) - lo
            if lab.shape[0] < stop - pos + 1:
                kt[key, POS], meta[M_WANT] = pos, stop - pos + 1
                return NEED_LABELS
            verdict = absent(
                code, prm, lab, pos, end, stop, n, now, limit, ended, ints, floats, valid, lo,
                kt[key, NUMBER], strs,
            )  # fmt: skip
            if verdict == PENDING:
                break
            if verdict == NONE:
                pos += 1
                continue
            time = limit
        o, r = meta[M_OUT], meta[M_ROWS]
        outputs = mlen if prm[P_ALL_ROWS] and mlen > 0 else 1  # ALL ROWS: one per match row
        if o + outputs > omet.shape[0]:
            kt[key, POS], meta[M_WANT] = pos, o + outputs
            return NEED_OUTPUTS
        if r + mlen > orow.shape[0]:
            kt[key, POS], meta[M_WANT] = pos, r + mlen
            return NEED_ROWS
        verdict = measures(
            pos, mlen, end - 1, lab, ints, floats, valid, lo, n, ended, kt[key, NUMBER],
            omi[o], omf[o], omv[o], strs,
        )  # fmt: skip
        if verdict == 2:
            break
        if prm[P_ALL_ROWS] and mlen > 1:  # RUNNING measures at each row (the last: above)
            for i in range(mlen):
                verdict = measures(
                    pos, mlen, pos + i, lab, ints, floats, valid, lo, n, ended,
                    kt[key, NUMBER], omi[o + i], omf[o + i], omv[o + i], strs,
                )  # fmt: skip
                if verdict == 2:
                    break
            if verdict == 2:
                break
        if mlen > 0 or prm[P_EMIT_EMPTY] != 0:
            for i in range(mlen):
                orow[r + i, 0] = lab[i]
                orow[r + i, 1] = seqs[lo + pos + i]
                orow[r + i, 2] = tss[lo + pos + i]
            kc, width = prm[P_KEY_COLUMN], prm[P_MEASURES]
            for i in range(outputs):
                omet[o + i, O_KEY] = key
                omet[o + i, O_TIME] = time
                omet[o + i, O_LEN] = i + 1 if outputs > 1 else mlen  # a row's alert: the prefix
                omet[o + i, O_ROW] = r
                omet[o + i, O_KEY_INT] = ints[lo + pos, kc]
                omet[o + i, O_KEY_VALID] = valid[lo + pos, kc]
                omet[o + i, O_EVENT] = event
                omet[o + i, O_NUMBER] = kt[key, NUMBER]
                okf[o + i] = floats[lo + pos, kc]
                if prm[P_ALL_ROWS] and mlen > 0:  # the row's own fields, after the measures
                    for c in range(ints.shape[1]):
                        omi[o + i, width + c] = ints[lo + pos + i, c]
                        omf[o + i, width + c] = floats[lo + pos + i, c]
                        omv[o + i, width + c] = valid[lo + pos + i, c]
            meta[M_OUT] = o + outputs
            meta[M_ROWS] = r + mlen
        kt[key, NUMBER] += 1
        pos = next_position(code, prm, skip_mask, lab, pos, mlen)
    cut = max(0, pos - prm[P_LOOKBACK])
    kt[key, LO] = lo + cut
    kt[key, N] = n - cut
    kt[key, BASE] += cut
    kt[key, POS] = pos - cut
    if n - cut == 0 and prm[P_POSITIONAL] == 0:
        kt[key, BASE], kt[key, POS], kt[key, NUMBER] = 0, 0, 1
    if n - cut == 0:
        kt[key, LO] = kt[key, SEG]  # no rows: the whole segment is free again
    return DONE_KEY


@nb.njit(cache=True)
def step(  # type: ignore[no-untyped-def]
    state, code, prm, skip_mask, colmap, strs, ev_floats, ev_ints, ev_valid, ev_ts, ev_stream,
    ev_key, ev_seq, now, ended, per_event,
):  # fmt: skip
    """Append the released events of the rule's stream to their keys, then decide the keys
    they touched (every key with rows, for windowed rules or at the end), in key order.
    With `per_event` (processing time) this happens per event, at its time, for every event
    of a stream in `per_event` (the streams any rule of the engine reads), as the Python
    engine decides on each arrival."""
    first, n = 0, ev_key.shape[0]
    visited = np.zeros(max(prm[P_WORDS], 1), np.int64)  # the search's scratch, once a call
    while True:  # once with no events: time passed (a watermark, the end)
        stop, at, trigger, skip = n, now, np.int64(-1), False
        if per_event.shape[0] and n:
            stop, at, trigger = first + 1, ev_ts[first], np.int64(first)
            skip = not per_event[ev_stream[first]]
        if not skip:
            state, keys = append_events(
                state, prm, colmap, ev_floats, ev_ints, ev_valid, ev_ts, ev_stream, ev_key,
                ev_seq, first, stop, at, ended,
            )  # fmt: skip
            kt, ints, floats, valid, seqs, tss, meta = state[:7]
            omet, okf, orow, omi, omf, omv, lab, stk, memo = state[7:]
            for j in range(keys.shape[0]):
                if j + AHEAD_KEY < keys.shape[0]:  # staged prefetch, as when appending
                    prefetch(kt, keys[j + AHEAD_KEY])
                if j + AHEAD_ROW < keys.shape[0]:
                    ahead = keys[j + AHEAD_ROW]
                    warm_slot(kt, ints, floats, valid, seqs, tss, ahead, kt[ahead, POS])
                key = keys[j]
                while True:
                    need = decide_key(
                        kt, ints, floats, valid, seqs, tss, meta, omet, okf, orow, omi, omf,
                        omv, lab, stk, memo, visited, code, prm, skip_mask, key, at, ended,
                        trigger, strs,
                    )  # fmt: skip
                    if need == DONE_KEY:
                        break
                    if need == NEED_OUTPUTS:
                        o = 2 * max(omet.shape[0], meta[M_WANT])
                        omet, okf = grow2(omet, o), grow1(okf, o)
                        omi, omf, omv = grow2(omi, o), grow2(omf, o), grow2(omv, o)
                    elif need == NEED_ROWS:
                        orow = grow2(orow, 2 * meta[M_WANT])
                    elif need == NEED_LABELS:
                        lab = grow1(lab, 2 * meta[M_WANT])
                    elif need == NEED_MEMO:
                        memo = grow1(memo, 2 * meta[M_WANT])
                    else:
                        stk = grow2(stk, 2 * stk.shape[0])
            state = (kt, ints, floats, valid, seqs, tss, meta, omet, okf, orow, omi, omf, omv, lab, stk, memo)  # fmt: skip
        first = stop
        if first >= n:
            return state


@nb.njit(cache=True)
def condition(label, start, current, labels, ints, floats, valid, lo, n, complete, number, strs):  # type: ignore[no-untyped-def]
    """Stub: replaced by the rule's generated `condition` (see the module docstring)."""
    return 1


@nb.njit(cache=True)
def measures(  # type: ignore[no-untyped-def]
    start, mlen, current, labels, ints, floats, valid, lo, n, complete, number, out_i, out_f,
    out_v, strs,
):  # fmt: skip
    """Stub: replaced by the rule's generated `measures`."""
    return 0
