"""The columnar JSON kernel: one Numba pass over a batch of flat JSON objects.

The batch's values are one uint8 buffer with offsets. For each message the kernel
validates the whole document (as strictly as orjson), matches keys against the stream's
field names through a small hash table, parses the values of known fields into the
batch's columns and skips the rest. Strings get their pool ids from the decoder's
`StringTables` (`service.fastjson_strings`), looked up by their bytes, so Python only
interns strings the table has not seen. What the kernel leaves to Python is listed as
*fixups* (a string with escapes, a float beyond the exact fast path, an unusual
timestamp); messages it cannot judge exactly like orjson get status FALLBACK and go through
the reference decoder.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

from service.fastjson_intrinsics import load64, unmanaged, word
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
)
from service.fastjson_strings import KEYS, POOL, ident, resolve
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
MAX_KEYS = 64  # keys per message remembered for the next message's key-order guess

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]


def name_hash(data: bytes) -> int:
    """The kernel's `hash_bytes`, for building the field-name table in Python."""
    return int(hash_bytes(np.frombuffer(data, np.uint8), 0, len(data)))


@njit(cache=True, inline="always")
def _same(buf: U8, s: int, a: int, n: int) -> bool:
    """Whether buf[s:s+n] equals buf[a:a+n], eight bytes at a time."""
    j = 0
    while j + 8 <= n:
        if load64(buf, s + j) != load64(buf, a + j):
            return False
        j += 8
    return j == n or word(buf, s + j, s + n) == word(buf, a + j, a + n)


@njit(cache=True, inline="always")
def _field(
    buf: U8, s: int, e: int, plan: I64, names: U8, name_hash: npt.NDArray[np.uint64], table: I64
) -> int:
    """The field named buf[s:e] (a plain string), or -1."""
    h = hash_bytes(buf, s, e)
    mask = np.uint64(table.shape[0] - 1)
    slot = np.int64(h & mask)
    while table[slot] >= 0:
        g = table[slot]
        a = plan[g, 3]
        if name_hash[g] == h and plan[g, 4] - a == e - s:
            same = True
            for j in range(e - s):
                if names[a + j] != buf[s + j]:
                    same = False
                    break
            if same:
                return int(g)
        slot = np.int64((slot + 1) & mask)
    return -1


@njit(cache=True)
def scan_batch(
    buf_in: U8,
    offs_in: I64,
    status_in: I64,
    plan_in: I64,
    names_in: U8,
    name_hash_in: npt.NDArray[np.uint64],
    field_table_in: I64,
    cached_in: npt.NDArray[np.bool_],
    floats_in: npt.NDArray[np.float64],
    ints_in: I64,
    valid_in: npt.NDArray[np.bool_],
    key_in: I64,
    rows_in: I64,
    row_bytes_in: U8,
    arena_in: U8,
    fresh_in: U8,
    state_in: I64,
    new_slot_in: I64,
    new_roles_in: I64,
    fix_in: I64,
    reason_in: I64,
    stats_in: I64,
    stack_in: U8,
    work_in: I64,
    work_float_in: npt.NDArray[np.float64],
    key_work_in: I64,
    todo_in: I64,
) -> int:
    """Decode every message whose status is OK; returns the number of fixups.

    `plan[f]` = (type, slot, column, name start, name end) of field f; `plan[k]` =
    (key field, time field, key is a string, -, -). `field_table` maps hash & mask to a
    field (-1 empty), `name_hash[f]` is field f's name hash. `work` (5 x k), `work_float`
    (k), `key_work` (2 x MAX_KEYS x 3) and `todo` (n x string fields x 5) are scratch.
    """
    # Views without a reference count: a managed array costs two atomic operations each
    # time it is passed to a helper or rebound, which was half of the kernel's time.
    buf, offs, status = unmanaged(buf_in), unmanaged(offs_in), unmanaged(status_in)
    plan, names = unmanaged(plan_in), unmanaged(names_in)
    name_hash, field_table = unmanaged(name_hash_in), unmanaged(field_table_in)
    cached, floats, ints = unmanaged(cached_in), unmanaged(floats_in), unmanaged(ints_in)
    valid, key, fix = unmanaged(valid_in), unmanaged(key_in), unmanaged(fix_in)
    reason, stats, stack = unmanaged(reason_in), unmanaged(stats_in), unmanaged(stack_in)
    rows, row_bytes = unmanaged(rows_in), unmanaged(row_bytes_in)
    arena, fresh, state = unmanaged(arena_in), unmanaged(fresh_in), unmanaged(state_in)
    new_slot, new_roles = unmanaged(new_slot_in), unmanaged(new_roles_in)
    work, vfloat, key_work = unmanaged(work_in), unmanaged(work_float_in), unmanaged(key_work_in)
    todo = unmanaged(todo_in)
    n_todo = 0
    k = plan.shape[0] - 1
    key_f, time_f, key_is_str = plan[k, 0], plan[k, 1], plan[k, 2] == 1
    # Per field of the current message: value kind, token start and end, integer value,
    # flags.
    vkind, vstart, vend, vint, vflag = work[0], work[1], work[2], work[3], work[4]
    # key_work[m]: start, length and field of each key of this message (m = mine) and of
    # the last valid one (1 - mine).
    mine = 0
    n_prev = 0
    n_fix = 0
    for i in range(len(offs) - 1):
        if status[i] != 0:
            continue
        end = offs[i + 1]
        p = skip_ws(buf, offs[i], end)
        if p >= end:
            status[i] = 1
            reason[i, 0], reason[i, 1], reason[i, 2], reason[i, 3] = R_JSON, -1, -1, p - offs[i]
            continue
        if buf[p] != 123:
            status[i] = 2
            continue
        for f in range(k):
            vkind[f] = V_ABSENT
        err = 0
        n_keys = 0
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
                # Producers write their keys in one order: try the previous message's key
                # at this position (validated then, so equal bytes need no checks now).
                q = -1
                if n_keys < n_prev:
                    a, n = key_work[1 - mine, n_keys, 0], key_work[1 - mine, n_keys, 1]
                    if p + n + 1 < end and buf[p + n + 1] == 34 and _same(buf, p + 1, a, n):
                        q, f = p + n + 2, key_work[1 - mine, n_keys, 2]
                if q < 0:
                    q, flags = scan_string(buf, p, end)
                    if q < 0:
                        err = q
                        break
                    if flags & S_ESCAPE:
                        err = FALLBACK
                        break
                    f = _field(buf, p + 1, q - 1, plan, names, name_hash, field_table)
                if n_keys < MAX_KEYS:
                    key_work[mine, n_keys, 0], key_work[mine, n_keys, 1] = p + 1, q - p - 2
                    key_work[mine, n_keys, 2] = f
                n_keys += 1
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
                if f < 0 and c == 34:  # unknown fields: the common values inline
                    q, _ = scan_string(buf, p, end)
                elif f < 0 and (c == 45 or 48 <= c <= 57):
                    q, _, _, _, _ = scan_number(buf, p, end)
                elif f < 0:
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
            reason[i, 0], reason[i, 1], reason[i, 2], reason[i, 3] = R_JSON, -1, err, p - offs[i]
            continue
        if n_keys <= MAX_KEYS:
            mine, n_prev = 1 - mine, n_keys
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
                    if cached[f]:  # looked up after the batch, see `resolve`
                        todo[n_todo, 0], todo[n_todo, 1], todo[n_todo, 2] = i, f, s
                        todo[n_todo, 3] = e
                        todo[n_todo, 4] = np.int64(hash_bytes(buf, s, e))
                        n_todo += 1
                    else:
                        roles = POOL | KEYS if f == key_f else POOL
                        pool_id, key_id, _ = ident(roles, -1, buf, s, e, rows, fresh, state, new_slot, new_roles)  # fmt: skip
                        ints[slot, i] = pool_id
                        stats[f, 1] += 1
                        if f == key_f:
                            key[i] = key_id
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
    resolve(buf, todo, n_todo, status, plan, key_f, ints, key, stats, rows, row_bytes, arena, fresh, state, new_slot, new_roles)  # fmt: skip
    return n_fix
