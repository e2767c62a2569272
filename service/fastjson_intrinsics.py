"""Machine-level helpers for the JSON kernel that Numba does not offer as functions.

Reference-count-free array views, unaligned 8-byte loads (to compare, hash and scan eight
bytes per step), count-trailing-zeros and a cache prefetch. Each is a few LLVM
instructions; the callers keep the arrays alive and the accesses in bounds.

`prefetch` is the engine's (`nfa.kernel_intrinsics`, re-exported here; the decoder's
stale-cache guard in `service.fastjson_plan` hashes that file too).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from llvmlite import ir  # type: ignore[import-untyped]
from numba import carray, njit, types  # type: ignore[attr-defined]
from numba.extending import intrinsic

from nfa.kernel_intrinsics import prefetch as prefetch

U8 = npt.NDArray[np.uint8]


@intrinsic
def _address(typingctx: Any, addr: Any, like: Any) -> Any:
    """The integer address `addr` as a pointer to `like`'s dtype (for `unmanaged`)."""
    sig = types.CPointer(like.dtype)(types.intp, like)  # type: ignore[no-untyped-call]

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        return builder.inttoptr(args[0], context.get_value_type(sig.return_type))

    return sig, codegen


@njit(cache=True)
def unmanaged(array: Any) -> Any:
    """A view of `array` without a reference count (the caller keeps `array` alive).

    Passing a managed array to a helper costs two atomic operations per call.
    """
    return carray(_address(array.ctypes.data, array), array.shape)  # type: ignore[call-arg]


def _load64(typingctx: Any, buf: Any, p: Any) -> Any:
    sig = types.uint64(buf, p)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        view = context.make_array(sig.args[0])(context, builder, args[0])
        pointer = builder.bitcast(builder.gep(view.data, [args[1]]), ir.IntType(64).as_pointer())
        return builder.load(pointer, align=1)

    return sig, codegen


def _trailing_zeros(typingctx: Any, word: Any) -> Any:
    sig = types.uint64(types.uint64)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))

    return sig, codegen


# Typed as Any: they are called from jitted code only, with Numba's types.
load64: Any = intrinsic(_load64)
"""`load64(buf, p)`: the eight bytes buf[p:p+8] as a little-endian uint64; needs
p + 8 <= len(buf)."""
trailing_zeros: Any = intrinsic(_trailing_zeros)
"""`trailing_zeros(w)`: the number of trailing zero bits of a non-zero uint64."""


@njit(cache=True, inline="always")
def word(buf: U8, p: int, end: int) -> np.uint64:
    """The bytes buf[p:end] (at most 8) as a little-endian uint64, zero above `end`."""
    n = end - p
    if p + 8 <= len(buf):
        whole: np.uint64 = load64(buf, p)
        return whole if n >= 8 else whole & ((np.uint64(1) << np.uint64(8 * n)) - np.uint64(1))
    w = np.uint64(0)
    for b in range(min(n, 8)):
        w |= np.uint64(buf[p + b]) << np.uint64(8 * b)
    return w
