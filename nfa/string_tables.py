"""Per-string-id lookup arrays: how generated kernels apply functions of strings.

Strings are `StringPool` ids at run time. Each string function (`lower`, `startswith`, ...),
`in` over a set of strings and `lookup` with a string key gets one row; column `id` holds
the result for that string, computed in Python with `nfa.interpret`'s own functions, once
per distinct string. The driver calls `arrays()` before each kernel call, which extends
the rows to the ids that appeared since (results of lower/upper may intern new strings),
refills the ids the pool gave again to other strings (`StringPool.recycled`), and after the
pool released ids (`StringPool.generation` changed) refills everything: a result may have
been a released string.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from nfa.batch import StringPool
from nfa.interpret import string_function

TableKey = tuple[object, ...]


class StringTables:
    """Per-string-id lookup arrays: one row per string function, `in` set or lookup table."""

    def __init__(self, pool: StringPool):
        self.pool = pool
        self.rows: list[TableKey] = []
        self.index: dict[TableKey, int] = {}
        self.ints: npt.NDArray[np.int64] = np.zeros((0, 0), np.int64)
        self.floats: npt.NDArray[np.float64] = np.zeros((0, 0), np.float64)
        self.ok: npt.NDArray[np.bool_] = np.zeros((0, 0), np.bool_)
        self.generation = pool.generation
        self.recycled_seen = len(pool.recycled)

    def row(self, key: TableKey) -> int:
        if key not in self.index:
            self.index[key] = len(self.rows)
            self.rows.append(key)
        return self.index[key]

    def arrays(
        self,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
        """The tables, extended to every id now in the pool (string functions may intern)."""
        if self.generation != self.pool.generation:  # ids were released: start again
            self.ints = np.zeros((0, 0), np.int64)
            self.generation = self.pool.generation
            self.recycled_seen = len(self.pool.recycled)
        while True:  # filling can intern (lower, upper, lookups): until nothing is new
            if self.recycled_seen < len(self.pool.recycled):
                self._refill(self.pool.recycled[self.recycled_seen :])
            elif self.ints.shape[0] != len(self.rows) or self.ints.shape[1] < len(self.pool):
                self._extend()
            else:
                return self.ints, self.floats, self.ok

    def _refill(self, recycled: list[int]) -> None:
        """Recompute the ids that now stand for another string."""
        self.recycled_seen += len(recycled)
        filled = self.ints.shape[1] if self.ints.shape[0] == len(self.rows) else 0
        for ident in recycled:
            if ident < filled:
                self.ok[:, ident] = True
                self.floats[:, ident] = 0.0
                self.ints[:, ident] = 0
                for r, key in enumerate(self.rows):
                    self._fill(key, ident, self.ints, self.floats, self.ok, r)

    def _extend(self) -> None:
        """Add the rows and ids that are new since the last call."""
        start = self.ints.shape[1] if self.ints.shape[0] == len(self.rows) else 0
        size = len(self.pool)
        ints = np.zeros((len(self.rows), size), np.int64)
        floats = np.zeros((len(self.rows), size), np.float64)
        ok = np.ones((len(self.rows), size), np.bool_)
        if start:  # same rows, more ids: keep the filled part
            ints[:, :start] = self.ints[:, :start]
            floats[:, :start] = self.floats[:, :start]
            ok[:, :start] = self.ok[:, :start]
        for r, key in enumerate(self.rows):
            for ident in range(start, size):
                self._fill(key, ident, ints, floats, ok, r)
        self.ints, self.floats, self.ok = ints, floats, ok

    def _fill(
        self,
        key: TableKey,
        ident: int,
        ints: npt.NDArray[np.int64],
        floats: npt.NDArray[np.float64],
        ok: npt.NDArray[np.bool_],
        r: int,
    ) -> None:
        text = self.pool.get(ident)
        if text is None:  # released: no event carries it
            return
        if key[0] == "fn":
            ints[r, ident] = int(string_function(str(key[1]), text, key[2], self.pool))  # type: ignore[arg-type]
        elif key[0] == "in":
            ints[r, ident] = int(text in key[1])  # type: ignore[operator]
        else:
            value: object = None
            for k, v in key[1]:  # type: ignore[attr-defined]
                if k == text:
                    value = v
                    break
            if value is None:
                ok[r, ident] = False
            elif isinstance(value, str):
                ints[r, ident] = self.pool.intern(value)
            elif isinstance(value, float):
                floats[r, ident] = value
            else:
                ints[r, ident] = int(value)  # type: ignore[call-overload]
