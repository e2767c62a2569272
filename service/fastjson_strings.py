"""Byte-string → pool-id table for the JSON kernel, so that Python interns only new strings.

An open-addressing table (linear probing, power-of-two capacity, load at most one half)
maps a string's UTF-8 bytes to its ids in two pools: the string pool and the key pool
(`UNSET` until the string is seen in that role). Each entry is one 64-byte row, so a
lookup touches one cache line: the hash, the length, where the bytes are in `arena`, the
two ids and the first `INLINE` bytes, which is all of a short string (card numbers,
merchants, countries); only longer strings compare against the arena. Entries compare by
bytes, so a hash collision costs a probe, never a wrong id.

A string lacking an id in a pool it is needed in is queued once for the pools it lacks and
gets the provisional id -1 - k (k: its position among the batch's new strings); its bytes
are appended, newline-separated, to `fresh`, which Python decodes in one call and interns;
then the table learns the real ids. Plain JSON strings cannot hold a raw newline, so the
separator is unambiguous. The kernel looks strings up after parsing the whole batch
(`resolve`), prefetching rows ahead, so that a table much larger than the CPU caches (100k
cards) does not make each message wait for memory.

The table grows by rehashing (the ids stay); it is cleared when it would pass
`max_entries`: the pools keep every string, so the next sighting simply interns again.
"""

from __future__ import annotations

import contextlib
import mmap

import numpy as np
import numpy.typing as npt
from numba import njit

from service.fastjson_intrinsics import prefetch

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
UNSET = -(2**62)  # no id in this pool yet
# Row layout (int64 words): hash, length (-1: empty slot), arena start, pool id, key id,
# then the first INLINE bytes of the string from byte BYTES on.
HASH, LENGTH, START, POOL_ID, KEY_ID = 0, 1, 2, 3, 4
ROW_WORDS, BYTES, INLINE = 8, 40, 24
# state[...]: arena fill, entries, new strings this batch, fresh fill.
ARENA_FILL, ENTRIES, NEW, FRESH_FILL = 0, 1, 2, 3
POOL, KEYS = 1, 2  # the pools a string is interned in (bits)
HUGE_PAGE = 2 << 20
PREFETCH = 32  # lookups ahead whose table rows `resolve` requests


@njit(cache=True, inline="always")
def home(rows: I64, h: np.uint64) -> np.int64:
    """The first slot probed for hash h."""
    return np.int64(h & np.uint64(len(rows) - 1))


@njit(cache=True, inline="always")
def find(buf: U8, s: int, e: int, h: np.uint64, rows: I64, row_bytes: U8, arena: U8, state: I64) -> np.int64:  # fmt: skip
    """The slot of buf[s:e], inserted (ids UNSET) if absent."""
    n = e - s
    mask = len(rows) - 1
    slot = home(rows, h)
    hv = np.int64(h)
    while rows[slot, LENGTH] >= 0:
        if rows[slot, HASH] == hv and rows[slot, LENGTH] == n:
            same = True
            if n <= INLINE:
                for j in range(n):
                    if row_bytes[slot, BYTES + j] != buf[s + j]:
                        same = False
                        break
            else:
                a = rows[slot, START]
                for j in range(n):
                    if arena[a + j] != buf[s + j]:
                        same = False
                        break
            if same:
                return slot
        slot = (slot + 1) & mask
    rows[slot, HASH], rows[slot, LENGTH] = hv, n
    rows[slot, POOL_ID] = rows[slot, KEY_ID] = UNSET
    if n <= INLINE:
        row_bytes[slot, BYTES : BYTES + n] = buf[s:e]
    else:
        fill = state[ARENA_FILL]
        arena[fill : fill + n] = buf[s:e]
        state[ARENA_FILL] = fill + n
        rows[slot, START] = fill
    state[ENTRIES] += 1
    return slot


@njit(cache=True, inline="always")
def ident(
    roles: int,
    slot: int | np.int64,
    buf: U8,
    s: int,
    e: int,
    rows: I64,
    fresh: U8,
    state: I64,
    new_slot: I64,
    new_roles: I64,
) -> tuple[int, int, bool]:
    """The ids of buf[s:e] in the pools `roles` names (POOL, or POOL | KEYS) given its slot
    (-1: not cached): (pool id, key id, whether it had them all). A string lacking one is
    queued once, for all of its roles, and gets the provisional id -1 - k."""
    pool_id = key_id = UNSET
    if slot >= 0:
        pool_id, key_id = rows[slot, POOL_ID], rows[slot, KEY_ID]
    missing = (POOL if pool_id == UNSET else 0) | (KEYS if key_id == UNSET else 0)
    missing &= roles
    if missing == 0:
        return pool_id, key_id, True
    k = state[NEW]
    state[NEW] = k + 1
    fill = state[FRESH_FILL]
    n = e - s
    fresh[fill : fill + n] = buf[s:e]
    fresh[fill + n] = 10
    state[FRESH_FILL] = fill + n + 1
    new_roles[k], new_slot[k] = missing, slot
    if missing & POOL:
        pool_id = -1 - k
    if missing & KEYS:
        key_id = -1 - k
    if slot >= 0:
        rows[slot, POOL_ID], rows[slot, KEY_ID] = pool_id, key_id
    return pool_id, key_id, False


@njit(cache=True, inline="always")
def resolve(
    buf: U8,
    todo: I64,
    n_todo: int,
    status: I64,
    plan: I64,
    key_f: int,
    ints: I64,
    key: I64,
    stats: I64,
    rows: I64,
    row_bytes: U8,
    arena: U8,
    fresh: U8,
    state: I64,
    new_slot: I64,
    new_roles: I64,
) -> None:
    """Give the batch's cached strings their ids: `todo[j]` = (row, field, start, end, hash).

    Done after parsing the batch rather than message by message so that the table row of
    the string `PREFETCH` entries ahead is requested while this one is looked up: in a
    table of 100k cards nearly every lookup would otherwise wait for memory.
    """
    for j in range(n_todo):
        if j + PREFETCH < n_todo:
            prefetch(rows, home(rows, np.uint64(todo[j + PREFETCH, 4])))
        i, f, s, e = todo[j, 0], todo[j, 1], todo[j, 2], todo[j, 3]
        if status[i] != 0:
            continue
        at = find(buf, s, e, np.uint64(todo[j, 4]), rows, row_bytes, arena, state)
        roles = POOL | KEYS if f == key_f else POOL
        pool_id, key_id, hit = ident(roles, at, buf, s, e, rows, fresh, state, new_slot, new_roles)  # fmt: skip
        ints[plan[f, 1], i] = pool_id
        stats[f, 0 if hit else 1] += 1
        if f == key_f:
            key[i] = key_id


@njit(cache=True)
def _rehash(rows: I64, to: I64) -> None:
    mask = len(to) - 1
    for old in range(len(rows)):
        if rows[old, LENGTH] >= 0:
            slot = np.int64(np.uint64(rows[old, HASH]) & np.uint64(mask))
            while to[slot, LENGTH] >= 0:
                slot = (slot + 1) & mask
            to[slot] = rows[old]


def _rows(capacity: int) -> I64:
    """`capacity` empty rows, each aligned on a 64-byte cache line.

    A large table is mapped on its own and marked for huge pages: lookups land anywhere
    in it, and with 4 KiB pages nearly each one would also miss the TLB.
    """
    size = capacity * ROW_WORDS * 8
    if size >= HUGE_PAGE and hasattr(mmap, "MADV_HUGEPAGE"):
        memory = mmap.mmap(-1, size + HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        start = -np.frombuffer(memory, np.uint8).ctypes.data % HUGE_PAGE
        with contextlib.suppress(OSError):
            memory.madvise(mmap.MADV_HUGEPAGE, start, size)
        words = np.frombuffer(memory, np.int64, size // 8, start)
    else:
        words = np.zeros(capacity * ROW_WORDS + ROW_WORDS, np.int64)
        skip = (-words.ctypes.data % 64) // 8
        words = words[skip : skip + capacity * ROW_WORDS]
    rows = words.reshape(capacity, ROW_WORDS)
    rows[:, LENGTH] = -1
    return rows


class StringTables:
    """The table, its arena and the batch's new strings (see the module docstring)."""

    def __init__(self, capacity: int = 1 << 12, max_entries: int = 1 << 20) -> None:
        self.max_entries = max_entries
        self.fresh = np.zeros(1 << 16, np.uint8)
        self.new_slot = np.zeros(0, np.int64)  # per new string: its slot or -1
        self.new_roles = np.zeros(0, np.int64)  # per new string: the pools it lacks
        self.clear(capacity)

    @property
    def row_bytes(self) -> U8:
        """The rows as bytes (the inline strings), for the kernel."""
        return self.rows.view(np.uint8)

    def clear(self, capacity: int) -> None:
        """Forget every entry (the pools keep the strings)."""
        self.rows = _rows(capacity)
        self.arena = np.zeros(1 << 16, np.uint8)
        self.state = np.zeros(4, np.int64)

    def prepare(self, max_new: int, max_bytes: int) -> bool:
        """Make room for a batch adding up to `max_new` strings of `max_bytes` in all.

        Returns whether the table was cleared (it would have passed `max_entries`, or its
        arena 64 bytes per allowed entry).
        """
        cleared = False
        entries, fill = int(self.state[ENTRIES]), int(self.state[ARENA_FILL])
        if entries + max_new > self.max_entries or fill + max_bytes > 64 * self.max_entries:
            self.clear(len(self.rows))
            cleared, entries, fill = True, 0, 0
        if 2 * (entries + max_new) > len(self.rows):
            grown = _rows(1 << (2 * (entries + max_new) - 1).bit_length())
            _rehash(self.rows, grown)
            self.rows = grown
        if len(self.arena) < fill + max_bytes:
            arena = np.zeros(max(2 * len(self.arena), 2 * (fill + max_bytes)), np.uint8)
            arena[:fill] = self.arena[:fill]
            self.arena = arena
        if len(self.fresh) < max_bytes + max_new:
            self.fresh = np.zeros(2 * (max_bytes + max_new), np.uint8)
        if len(self.new_slot) < max_new:
            self.new_slot = np.zeros(max_new, np.int64)
            self.new_roles = np.zeros(max_new, np.int64)
        self.state[NEW] = self.state[FRESH_FILL] = 0
        return cleared

    def new_strings(self) -> tuple[list[str], I64, I64]:
        """The batch's new strings, and for each the pools it lacks (POOL, KEYS bits) and
        its slot (-1: uncached)."""
        count, fill = int(self.state[NEW]), int(self.state[FRESH_FILL])
        if count == 0:
            return [], self.new_roles[:0], self.new_slot[:0]
        texts = self.fresh[: fill - 1].tobytes().decode().split("\n")
        return texts, self.new_roles[:count], self.new_slot[:count]

    def learn(self, roles: I64, slots: I64, pool_ids: I64, key_ids: I64) -> None:
        """Record the ids Python gave the batch's new strings."""
        for role, column, ids in ((POOL, POOL_ID, pool_ids), (KEYS, KEY_ID, key_ids)):
            learnt = (slots >= 0) & (roles & role != 0)
            self.rows[slots[learnt], column] = ids[learnt]
