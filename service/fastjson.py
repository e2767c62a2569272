"""The columnar JSON kernel: one Numba pass over a batch of flat JSON objects.

The batch's values are one uint8 buffer with offsets. For each message the kernel
validates the whole document (as strictly as orjson), matches keys against the stream's
field names through a small hash table, parses the values of known fields into the
batch's columns and skips the rest. Strings are looked up by their bytes in per-decoder
hash tables (`StringTables`) that map to `StringPool` ids, so Python only interns strings it
has not seen before; those get provisional negative ids (-1 - position in the list of new
strings) and their bytes are copied, newline-separated, to an arena that Python decodes in
one call. What the kernel leaves to Python is listed as *fixups* (a string with escapes, a
float beyond the exact fast path, an unusual timestamp); messages it cannot judge exactly
like orjson get status FALLBACK and go through the reference decoder.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

from service.fastjson_parse import (
    F_BIG,
    F_FAST,
    FALLBACK,
    N_INT,
    S_ESCAPE,
    hash_bytes,
    scan_literal,
    scan_number,
    scan_string,
    skip_value,
    skip_ws,
    unmanaged,
)
from service.fastjson_time import parse_iso

# Message status.
OK, REJECTED, FALLBACK_STATUS, SKIPPED = 0, 1, 2, 3
# Reason codes (reason[i] = code, field, a, b).
R_JSON, R_MISSING, R_TYPE, R_TIMESTAMP = 1, 2, 3, 4
# Field types.
T_FLOAT, T_INT, T_BOOL, T_STRING, T_TIMESTAMP = 0, 1, 2, 3, 4
T_STRING_UNUSED = 5  # a string no rule reads: type-checked, not interned, left invalid
# Value kinds seen in a message.
V_ABSENT, V_NULL, V_STR, V_INT, V_FLOAT, V_BOOL, V_OBJ, V_ARR = 0, 1, 2, 3, 4, 5, 6, 7
KIND_NAMES = {V_STR: "str", V_INT: "int", V_FLOAT: "float", V_BOOL: "bool"}
KIND_NAMES |= {V_OBJ: "dict", V_ARR: "list"}
# Fixups (fix[j] = kind, row, field, token start, token end).
X_STRING, X_FLOAT, X_TS_FLOAT, X_TS_STRING, X_KEY = 1, 2, 3, 4, 5

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
EMPTY = -1


def name_hash(data: bytes) -> int:
    """The kernel's `hash_bytes`, for building the field-name table in Python."""
    return int(hash_bytes(np.frombuffer(data, np.uint8), 0, len(data)))


@njit(cache=True)
def _intern(
    t: int,
    buf: U8,
    s: int,
    e: int,
    h: np.uint64,
    cache: bool,
    hashes: npt.NDArray[np.uint64],
    ids: I64,
    starts: I64,
    lengths: I64,
    arena: U8,
    state: I64,
    new_slot: I64,
    new_table: I64,
) -> tuple[int, bool]:
    """The id of buf[s:e] in table t, or a provisional id for a new string: (id, hit)."""
    n = e - s
    slot = np.int64(0)
    if cache:
        mask = np.uint64(hashes.shape[1] - 1)
        slot = np.int64(h & mask)
        while lengths[t, slot] >= 0:
            if hashes[t, slot] == h and lengths[t, slot] == n:
                a = starts[t, slot]
                same = True
                for j in range(n):
                    if arena[a + j] != buf[s + j]:
                        same = False
                        break
                if same:
                    return ids[t, slot], True
            slot = (slot + 1) & (hashes.shape[1] - 1)
    k = state[2]
    state[2] = k + 1
    fill = state[0]
    arena[fill : fill + n] = buf[s:e]
    arena[fill + n] = 10
    state[0] = fill + n + 1
    new_table[k] = t
    new_slot[k] = -1
    if cache:
        hashes[t, slot] = h
        lengths[t, slot] = n
        starts[t, slot] = fill
        ids[t, slot] = -1 - k
        state[1] += 1
        new_slot[k] = slot
    return -1 - k, False


@njit(cache=True)
def scan_batch(
    buf_in: U8,
    offs: I64,
    status: I64,
    plan: I64,
    names: U8,
    name_hash: npt.NDArray[np.uint64],
    field_table: I64,
    cached: npt.NDArray[np.bool_],
    floats: npt.NDArray[np.float64],
    ints: I64,
    valid: npt.NDArray[np.bool_],
    key: I64,
    hashes_in: npt.NDArray[np.uint64],
    ids_in: I64,
    starts_in: I64,
    lengths_in: I64,
    arena_in: U8,
    state_in: I64,
    new_slot_in: I64,
    new_table_in: I64,
    fix: I64,
    reason: I64,
    stats: I64,
    stack_in: U8,
) -> int:
    """Decode every message whose status is OK; returns the number of fixups.

    `plan[f]` = (type, slot, column, name start, name end) of field f; `plan[k]` =
    (key field, time field, key is a string, -, -). `field_table` maps hash & mask to a
    field (-1 empty), `name_hash[f]` is field f's name hash.
    """
    # Views without a reference count: passing a managed array to a helper costs two
    # atomic operations per call, which was half of the kernel's time.
    buf = unmanaged(buf_in)
    hashes = unmanaged(hashes_in)
    ids = unmanaged(ids_in)
    starts = unmanaged(starts_in)
    lengths = unmanaged(lengths_in)
    arena = unmanaged(arena_in)
    state = unmanaged(state_in)
    new_slot = unmanaged(new_slot_in)
    new_table = unmanaged(new_table_in)
    stack = unmanaged(stack_in)
    k = plan.shape[0] - 1
    key_f, time_f, key_is_str = plan[k, 0], plan[k, 1], plan[k, 2] == 1
    tmask = np.uint64(field_table.shape[0] - 1)
    vkind = np.zeros(k, np.int64)
    vstart = np.zeros(k, np.int64)
    vend = np.zeros(k, np.int64)
    vhash = np.zeros(k, np.uint64)
    vint = np.zeros(k, np.int64)
    vfloat = np.zeros(k, np.float64)
    vflag = np.zeros(k, np.int64)
    n_fix = 0
    for i in range(len(offs) - 1):
        if status[i] != 0:
            continue
        end = offs[i + 1]
        p = skip_ws(buf, offs[i], end)
        if p >= end:
            status[i] = 1
            reason[i, 0], reason[i, 2], reason[i, 3] = R_JSON, -1, p - offs[i]
            continue
        if buf[p] != 123:
            status[i] = 2
            continue
        vkind[:] = V_ABSENT
        err = 0
        p = skip_ws(buf, p + 1, end)
        if p < end and buf[p] == 125:
            p += 1
        else:
            while True:
                if p >= end:
                    err = -1
                    break
                if buf[p] != 34:
                    err = -2
                    break
                q, flags = scan_string(buf, p, end)
                if q < 0:
                    err = q
                    break
                if flags & S_ESCAPE:
                    err = FALLBACK
                    break
                h = hash_bytes(buf, p + 1, q - 1)
                f = -1
                slot = np.int64(h & tmask)
                while field_table[slot] >= 0:
                    g = field_table[slot]
                    a = plan[g, 3]
                    if name_hash[g] == h and plan[g, 4] - a == q - p - 2:
                        f = g
                        for j in range(q - p - 2):
                            if names[a + j] != buf[p + 1 + j]:
                                f = -1
                                break
                        if f >= 0:
                            break
                    slot = (slot + 1) & (field_table.shape[0] - 1)
                p = skip_ws(buf, q, end)
                if p >= end:
                    err = -1
                    break
                if buf[p] != 58:
                    err = -2
                    break
                p = skip_ws(buf, p + 1, end)
                if p >= end:
                    err = -1
                    break
                c = buf[p]
                if f < 0:
                    q = skip_value(buf, p, end, stack)
                elif vkind[f] != V_ABSENT:
                    err = FALLBACK  # a duplicate key: orjson keeps the last one
                    break
                elif c == 34:
                    q, flags = scan_string(buf, p, end)
                    vkind[f], vflag[f] = V_STR, flags
                elif c == 45 or 48 <= c <= 57:
                    q, nkind, ival, fval, nflag = scan_number(buf, p, end)
                    if nflag & F_BIG:
                        err = FALLBACK
                        break
                    vkind[f] = V_INT if nkind == N_INT else V_FLOAT
                    vint[f], vfloat[f], vflag[f] = ival, fval, nflag
                elif c == 123 or c == 91:
                    q = skip_value(buf, p, end, stack)
                    vkind[f] = V_OBJ if c == 123 else V_ARR
                else:
                    q, lit = scan_literal(buf, p, end)
                    vkind[f] = V_NULL if lit < 0 else V_BOOL
                    vint[f] = lit
                if q < 0:
                    err = q
                    break
                if f >= 0:
                    vstart[f], vend[f] = p, q
                p = skip_ws(buf, q, end)
                if p >= end:
                    err = -1
                    break
                if buf[p] == 44:
                    p = skip_ws(buf, p + 1, end)
                elif buf[p] == 125:
                    p += 1
                    break
                else:
                    err = -2
                    break
        if err == 0 and skip_ws(buf, p, end) != end:
            err, p = -2, skip_ws(buf, p, end)
        if err != 0:
            status[i] = 2 if err == FALLBACK else 1
            reason[i, 0], reason[i, 2], reason[i, 3] = R_JSON, err, p - offs[i]
            continue
        # Schema checks and columns, in column order like the reference decoder.
        first_fix = n_fix
        deferred = False
        for f in range(k):
            kind, ftype, slot, col = vkind[f], plan[f, 0], plan[f, 1], plan[f, 2]
            if kind in (V_ABSENT, V_NULL):
                if f in (key_f, time_f):
                    err = R_MISSING
                    break
                continue
            ok = True
            fx = 0
            if ftype == T_FLOAT:
                if kind == V_INT:
                    floats[slot, i] = float(vint[f])
                elif kind == V_FLOAT and vflag[f] & F_FAST:
                    floats[slot, i] = vfloat[f]
                elif kind == V_FLOAT:
                    fx = X_FLOAT
                else:
                    ok = False
            elif ftype in (T_INT, T_BOOL):
                ok = kind == (V_INT if ftype == T_INT else V_BOOL)
                ints[slot, i] = vint[f]
            elif ftype == T_STRING_UNUSED:
                if kind != V_STR:
                    err = R_TYPE
                    break
                continue
            elif ftype == T_STRING:
                if kind != V_STR:
                    ok = False
                elif vflag[f] & S_ESCAPE:
                    fx = X_STRING
                else:
                    s, e = vstart[f] + 1, vend[f] - 1
                    vhash[f] = hash_bytes(buf, s, e) if cached[f] else 0
                    ident, hit = _intern(0, buf, s, e, vhash[f], cached[f], hashes, ids, starts, lengths, arena, state, new_slot, new_table)  # fmt: skip
                    ints[slot, i] = ident
                    stats[f, 0 if hit else 1] += 1
                    if f == key_f:
                        key[i], hit = _intern(1, buf, s, e, vhash[f], cached[f], hashes, ids, starts, lengths, arena, state, new_slot, new_table)  # fmt: skip
            else:  # timestamp
                if kind == V_INT:
                    ints[slot, i] = vint[f]
                elif kind == V_FLOAT and vflag[f] & F_FAST:
                    if not -9.223372036854775e18 <= vfloat[f] <= 9.223372036854775e18:
                        err = R_TIMESTAMP
                        break
                    ints[slot, i] = int(vfloat[f])
                elif kind == V_FLOAT:
                    fx = X_TS_FLOAT
                elif kind == V_STR and not vflag[f] & S_ESCAPE:
                    ok_iso, ms = parse_iso(buf, vstart[f] + 1, vend[f] - 1)
                    if ok_iso:
                        ints[slot, i] = ms
                    else:
                        fx = X_TS_STRING
                elif kind == V_STR:
                    fx = X_TS_STRING
                else:
                    ok = False
            if not ok:
                err = R_TYPE
                break
            if fx != 0:
                deferred = deferred or fx in (X_TS_FLOAT, X_TS_STRING)
                fix[n_fix, 0], fix[n_fix, 1], fix[n_fix, 2] = fx, i, f
                fix[n_fix, 3], fix[n_fix, 4] = vstart[f], vend[f]
                n_fix += 1
            valid[col, i] = True
        if err == 0 and not key_is_str:
            fix[n_fix, 0], fix[n_fix, 1], fix[n_fix, 2] = X_KEY, i, key_f
            fix[n_fix, 3], fix[n_fix, 4] = vstart[key_f], vend[key_f]
            n_fix += 1
        if err != 0:
            n_fix = first_fix
            # A deferred timestamp before the error might be the first error: let the
            # reference decoder decide which reason comes first.
            status[i] = 2 if deferred else 1
            reason[i, 0], reason[i, 1] = err, f
            reason[i, 2], reason[i, 3] = (vkind[f], 0) if err == R_TYPE else (vstart[f], vend[f])
    return n_fix
