"""Byte-level JSON scanners for the columnar decoder, compiled with Numba.

Every function reads one JSON token from a uint8 buffer at a position and returns the
position after it, or a negative error code (`E_*`) where the bytes are not JSON. They are
as strict as orjson, which the reference decoder uses, so a message is accepted or rejected
the same way by both. Where matching orjson exactly would need a lot of code for a case
that does not occur in practice (surrogate escapes, nesting deeper than `MAX_DEPTH`,
numbers that might overflow to infinity) they return `FALLBACK` and the message goes
through the reference decoder instead.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

from service.fastjson_intrinsics import load64, trailing_zeros, word

U8 = npt.NDArray[np.uint8]

# Errors (negative positions) and the fallback marker.
E_EOF = -1  # the document ends inside a token
E_CHAR = -2  # an unexpected byte
E_CONTROL = -3  # a control character inside a string
E_ESCAPE = -4  # an invalid escape sequence
E_UTF8 = -5  # invalid UTF-8
E_NUMBER = -6  # a malformed number
FALLBACK = -100

ERROR_TEXT = {
    E_EOF: "unexpected end of document",
    E_CHAR: "unexpected character",
    E_CONTROL: "control character in string",
    E_ESCAPE: "invalid escape in string",
    E_UTF8: "invalid UTF-8",
    E_NUMBER: "malformed number",
}

# String scan flags.
S_ESCAPE = 1  # contains a backslash escape: the decoded text is not the raw bytes

# Number kinds.
N_INT = 1
N_FLOAT = 2
# Number flags.
F_FAST = 1  # the float value was computed exactly (else parse the token in Python)
F_BIG = 2  # an integer outside the int64 range

MAX_DEPTH = 500
FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)
_MIX1 = np.uint64(0xFF51AFD7ED558CCD)
_MIX2 = np.uint64(0xC4CEB9FE1A85EC53)
_ONES = np.uint64(0x0101010101010101)
_HIGH = np.uint64(0x8080808080808080)
_POW10 = np.array([10.0**i for i in range(23)], np.float64)
_PLAIN = np.zeros(256, np.bool_)  # bytes a string may hold as they are
_PLAIN[32:128] = True
_PLAIN[34] = _PLAIN[92] = False
_ESCAPES = np.zeros(256, np.bool_)  # the characters after a backslash other than u
for _c in b'"\\/bfnrt':
    _ESCAPES[_c] = True
_HEX = np.full(256, -1, np.int64)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _HEX[_c] = 10 + _i


@njit(cache=True, inline="always")
def skip_ws(buf: U8, p: int, end: int) -> int:
    """The first position at or after p that is not JSON whitespace."""
    while p < end:
        c = buf[p]
        if c != 32 and c != 10 and c != 13 and c != 9:
            break
        p += 1
    return p


@njit(cache=True, inline="always")
def hash_bytes(buf: U8, s: int, e: int) -> np.uint64:
    """A 64-bit hash of buf[s:e], eight bytes per multiply (FNV-style), then MurmurHash3's
    finalizer so that the low bits, which pick a table slot, depend on every byte."""
    h = FNV_OFFSET ^ np.uint64(e - s)
    j = s
    while j + 8 <= e:
        h = (h ^ load64(buf, j)) * FNV_PRIME
        h ^= h >> np.uint64(29)
        j += 8
    h = (h ^ word(buf, j, e)) * FNV_PRIME
    h = (h ^ (h >> np.uint64(33))) * _MIX1
    h = (h ^ (h >> np.uint64(33))) * _MIX2
    return h ^ (h >> np.uint64(33))


@njit(cache=True, inline="always")
def special_bytes(w: np.uint64) -> np.uint64:
    """Bit 7 of each byte of w that a string cannot hold as it is (quote, backslash,
    control, non-ASCII); exact for the lowest such byte, which is all the caller uses
    (a borrow can only flag bytes above a flagged one)."""
    quote, backslash = w ^ (_ONES * np.uint64(34)), w ^ (_ONES * np.uint64(92))
    m = (w - _ONES * np.uint64(32)) & ~w
    m |= (quote - _ONES) & ~quote
    m |= (backslash - _ONES) & ~backslash
    return (m | w) & _HIGH


@njit(cache=True, inline="always")
def scan_string(buf: U8, p: int, end: int) -> tuple[int, int]:
    """Validate the string starting at the quote at p: (end after the quote, S_* flags)."""
    flags = 0
    p += 1
    while p < end:
        if p + 8 <= end:  # eight bytes at a time up to the first that needs a look
            m = special_bytes(load64(buf, p))
            if m == 0:
                p += 8
                continue
            p += np.int64(trailing_zeros(m) >> np.uint64(3))  # type: ignore[assignment]
        c = buf[p]
        if _PLAIN[c]:
            p += 1
            continue
        if c == 34:
            return p + 1, flags
        if c == 92:
            flags |= S_ESCAPE
            if p + 1 >= end:
                return E_EOF, flags
            e = buf[p + 1]
            if e == 117:  # \uXXXX
                if p + 5 >= end:
                    return E_EOF, flags
                code = 0
                for j in range(p + 2, p + 6):
                    d = _HEX[buf[j]]
                    if d < 0:
                        return E_ESCAPE, flags
                    code = code * 16 + d
                if 0xD800 <= code <= 0xDFFF:
                    return FALLBACK, flags
                p += 6
                continue
            if not _ESCAPES[e]:
                return E_ESCAPE, flags
            p += 2
            continue
        if c < 32:
            return E_CONTROL, flags
        # Multi-byte UTF-8: RFC 3629, no overlongs, no surrogates, nothing past U+10FFFF.
        if 0xC2 <= c <= 0xDF:
            n = 1
            lo, hi = 0x80, 0xBF
        elif 0xE0 <= c <= 0xEF:
            n = 2
            lo = 0xA0 if c == 0xE0 else 0x80
            hi = 0x9F if c == 0xED else 0xBF
        elif 0xF0 <= c <= 0xF4:
            n = 3
            lo = 0x90 if c == 0xF0 else 0x80
            hi = 0x8F if c == 0xF4 else 0xBF
        else:
            return E_UTF8, flags
        if p + n >= end:
            return E_UTF8, flags
        b = buf[p + 1]
        if b < lo or b > hi:
            return E_UTF8, flags
        for j in range(p + 2, p + n + 1):
            b = buf[j]
            if b < 0x80 or b > 0xBF:
                return E_UTF8, flags
        p += n + 1
    return E_EOF, flags


@njit(cache=True, inline="always")
def scan_number(buf: U8, p: int, end: int) -> tuple[int, int, int, float, int]:
    """Parse the number at p: (end, N_INT or N_FLOAT, int value, float value, F_* flags).

    Integers of up to 18 digits are exact; longer ones get F_BIG. Floats whose digits fit
    in 2**53 with a power of ten up to 22 are exact with one IEEE operation (Clinger's fast
    path) and get F_FAST; others are parsed again in Python. A float that might overflow
    to infinity (which orjson rejects) returns FALLBACK.
    """
    neg = False
    if p < end and buf[p] == 45:
        neg = True
        p += 1
    if p >= end:
        return E_EOF, 0, 0, 0.0, 0
    c = buf[p]
    if c < 48 or c > 57:
        return E_NUMBER, 0, 0, 0.0, 0
    mant = 0
    digits = 0  # significant digits accumulated in mant
    int_digits = 0  # significant digits before the point
    lead_zeros = 0  # zeros after the point before the first significant digit
    if c == 48:
        p += 1
        if p < end and 48 <= buf[p] <= 57:
            return E_NUMBER, 0, 0, 0.0, 0
    else:
        while p < end and 48 <= buf[p] <= 57:
            if digits < 18:
                mant = mant * 10 + (buf[p] - 48)
                digits += 1
            int_digits += 1
            p += 1
    kind = N_INT
    frac = 0
    if p < end and buf[p] == 46:
        kind = N_FLOAT
        p += 1
        start = p
        while p < end and 48 <= buf[p] <= 57:
            d = buf[p] - 48
            if digits == 0 and d == 0:
                lead_zeros += 1
            elif digits < 18:
                mant = mant * 10 + d
                digits += 1
                frac += 1
            elif digits >= 18:
                digits += 1  # precision lost: not fast
            p += 1
        if p == start:
            return E_NUMBER if p < end else E_EOF, 0, 0, 0.0, 0
        frac += lead_zeros
    exp = 0
    if p < end and (buf[p] == 101 or buf[p] == 69):
        kind = N_FLOAT
        p += 1
        exp_neg = False
        if p < end and (buf[p] == 43 or buf[p] == 45):
            exp_neg = buf[p] == 45
            p += 1
        start = p
        while p < end and 48 <= buf[p] <= 57:
            if exp < 100000:
                exp = exp * 10 + (buf[p] - 48)
            p += 1
        if p == start:
            return E_NUMBER if p < end else E_EOF, 0, 0, 0.0, 0
        if exp_neg:
            exp = -exp
    if kind == N_INT:
        if int_digits > 18:
            return p, N_INT, 0, 0.0, F_BIG
        return p, N_INT, -mant if neg else mant, 0.0, 0
    if mant == 0:
        return p, N_FLOAT, 0, -0.0 if neg else 0.0, F_FAST
    # The leading significant digit is 10**msd; 10**308 and above might be infinite.
    msd = (int_digits - 1 if int_digits > 0 else -(lead_zeros + 1)) + exp
    if msd >= 308:
        return FALLBACK, 0, 0, 0.0, 0
    if int_digits > 18:
        return p, N_FLOAT, 0, 0.0, 0
    e10 = exp - frac + (int_digits - min(int_digits, 19))
    if digits > 18 or mant > 9007199254740992 or e10 < -22 or e10 > 22:
        return p, N_FLOAT, 0, 0.0, 0
    value = float(mant)
    value = value * _POW10[e10] if e10 >= 0 else value / _POW10[-e10]
    return p, N_FLOAT, 0, -value if neg else value, F_FAST


@njit(cache=True)
def scan_literal(buf: U8, p: int, end: int) -> tuple[int, int]:
    """true / false / null at p: (end, 1 for true, 0 for false, -1 for null)."""
    c = buf[p]
    if c == 116 and p + 4 <= end and buf[p + 1] == 114 and buf[p + 2] == 117:
        if buf[p + 3] == 101:
            return p + 4, 1
    elif c == 102 and p + 5 <= end and buf[p + 1] == 97 and buf[p + 2] == 108:
        if buf[p + 3] == 115 and buf[p + 4] == 101:
            return p + 5, 0
    elif c == 110 and p + 4 <= end and buf[p + 1] == 117 and buf[p + 2] == 108:  # noqa: SIM102
        if buf[p + 3] == 108:
            return p + 4, -1
    return E_CHAR, 0


@njit(cache=True)
def skip_value(buf: U8, p: int, end: int, stack: U8) -> int:
    """Validate any JSON value at p (objects and arrays iteratively); its end or an error."""
    depth = 0
    while True:
        p = skip_ws(buf, p, end)
        if p >= end:
            return E_EOF
        c = buf[p]
        if c == 123 or c == 91:  # open a container
            if depth >= MAX_DEPTH:
                return FALLBACK
            stack[depth] = c
            depth += 1
            p = skip_ws(buf, p + 1, end)
            if p >= end:
                return E_EOF
            if buf[p] == c + 2:  # empty {} or []
                depth -= 1
                p += 1
            elif c == 123:
                if buf[p] != 34:
                    return E_CHAR
                p, _ = scan_string(buf, p, end)
                if p < 0:
                    return p
                p = skip_ws(buf, p, end)
                if p >= end:
                    return E_EOF
                if buf[p] != 58:
                    return E_CHAR
                p += 1
                continue
            else:
                continue
        elif c == 34:
            p, _ = scan_string(buf, p, end)
        elif c == 45 or 48 <= c <= 57:
            p, _, _, _, _ = scan_number(buf, p, end)
        else:
            p, _ = scan_literal(buf, p, end)
        if p < 0:
            return p
        # After a value: close containers or move to the next member.
        while True:
            if depth == 0:
                return p
            p = skip_ws(buf, p, end)
            if p >= end:
                return E_EOF
            c = buf[p]
            top = stack[depth - 1]
            if c == top + 2:
                depth -= 1
                p += 1
                continue
            if c != 44:
                return E_CHAR
            p = skip_ws(buf, p + 1, end)
            if top == 123:
                if p >= end:
                    return E_EOF
                if buf[p] != 34:
                    return E_CHAR
                p, _ = scan_string(buf, p, end)
                if p < 0:
                    return p
                p = skip_ws(buf, p, end)
                if p >= end:
                    return E_EOF
                if buf[p] != 58:
                    return E_CHAR
                p += 1
            break
