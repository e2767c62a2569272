"""ISO-8601 timestamps in the JSON kernel: the common form parsed in place, exactly as Python.

Only `YYYY-MM-DD[T ]HH:MM:SS(.f{1,6})?(Z|±HH:MM)` for years 1700-2200 (where microseconds
fit a double exactly); anything else is left to `datetime.fromisoformat` in Python.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

U8 = npt.NDArray[np.uint8]

_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int64)


@njit(cache=True)
def _digits(buf: U8, p: int, n: int) -> int:
    value = 0
    for j in range(p, p + n):
        d = buf[j] - 48
        if d < 0 or d > 9:
            return -1
        value = value * 10 + d
    return value


@njit(cache=True)
def parse_iso(buf: U8, p: int, end: int) -> tuple[bool, int]:
    """`YYYY-MM-DD[T ]HH:MM:SS(.f{1,6})?(Z|±HH:MM)` in [p, end) to epoch ms, as Python does.

    `int(datetime.fromisoformat(s).timestamp() * 1000)`: microseconds divided by 1e6 as a
    double, times 1000, truncated. (False, 0) for anything else, which Python then parses.
    """
    n = end - p
    if n < 20 or buf[p + 4] != 45 or buf[p + 7] != 45 or buf[p + 13] != 58:
        return False, 0
    if buf[p + 16] != 58 or (buf[p + 10] != 84 and buf[p + 10] != 32):
        return False, 0
    year, month, day = _digits(buf, p, 4), _digits(buf, p + 5, 2), _digits(buf, p + 8, 2)
    hour, minute = _digits(buf, p + 11, 2), _digits(buf, p + 14, 2)
    second = _digits(buf, p + 17, 2)
    if min(year, month, day, hour, minute, second) < 0:
        return False, 0
    if year < 1700 or year > 2200 or month < 1 or month > 12 or day < 1:
        return False, 0
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    dim = 29 if month == 2 and leap else _MONTH_DAYS[month]
    if day > dim or hour > 23 or minute > 59 or second > 59:
        return False, 0
    q = p + 19
    micros = 0
    if q < end and buf[q] == 46:
        q += 1
        start = q
        while q < end and 48 <= buf[q] <= 57 and q - start < 7:
            micros = micros * 10 + (buf[q] - 48)
            q += 1
        width = q - start
        if width < 1 or width > 6:
            return False, 0
        for _ in range(6 - width):
            micros *= 10
    if q >= end:
        return False, 0
    offset = 0
    if buf[q] == 90 and q + 1 == end:
        offset = 0
    elif (buf[q] == 43 or buf[q] == 45) and q + 6 == end and buf[q + 3] == 58:
        oh, om = _digits(buf, q + 1, 2), _digits(buf, q + 4, 2)
        if oh < 0 or om < 0 or oh > 23 or om > 59:
            return False, 0
        offset = (oh * 3600 + om * 60) * (1 if buf[q] == 43 else -1)
    else:
        return False, 0
    # Days from the civil date (Howard Hinnant's algorithm).
    y = year - 1 if month <= 2 else year
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset
    total_us = seconds * 1_000_000 + micros
    return True, int(float(total_us) / 1e6 * 1000.0)
