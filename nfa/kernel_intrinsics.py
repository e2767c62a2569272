"""Machine-level helpers for jitted kernels that Numba does not offer as functions.

`prefetch` asks the CPU to start loading a table row that a kernel will read a little
later: the step kernels request the key-table row of the event a few positions ahead, so
that with many keys (a table larger than the CPU caches) an event does not wait for memory
(the JSON decoder, `service.fastjson_strings`, does the same for its string table). It is a
hint only: it never faults and changes no value, so an index past the array is harmless
(the callers still keep it in bounds).
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir  # type: ignore[import-untyped]
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["prefetch", "prefetch_at"]


def _request(context: Any, builder: Any, sig: Any, args: Any) -> None:
    """Emit `llvm.prefetch` of the address of array[index...] (no bounds check: a hint);
    `args` are the array and its integer indices (any width), a missing column is 0."""
    array_type = sig.args[0]
    view = context.make_array(array_type)(context, builder, args[0])
    index = [
        context.cast(builder, v, t, types.intp) for v, t in zip(args[1:], sig.args[1:], strict=True)
    ]
    index += [context.get_constant(types.intp, 0)] * (array_type.ndim - len(index))
    pointer = cgutils.get_item_pointer(context, builder, array_type, view, index)  # type: ignore[no-untyped-call]
    i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
    fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
    fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")  # type: ignore[no-untyped-call]
    # read access (0), keep in all cache levels (3), data cache (1)
    builder.call(fn, [builder.bitcast(pointer, i8p), i32(0), i32(3), i32(1)])


def _prefetch(typingctx: Any, rows: Any, slot: Any) -> Any:
    sig = types.void(rows, slot)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        _request(context, builder, sig, args)
        return context.get_dummy_value()

    return sig, codegen


def _prefetch_at(typingctx: Any, rows: Any, slot: Any, column: Any) -> Any:
    sig = types.void(rows, slot, column)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        _request(context, builder, sig, args)
        return context.get_dummy_value()

    return sig, codegen


# Typed as Any: called from jitted code only, with Numba's types.
prefetch: Any = intrinsic(_prefetch)
"""`prefetch(rows, slot)`: ask the CPU to load the cache line of 2-d `rows[slot, 0]` (a
hint: no effect on values)."""
prefetch_at: Any = intrinsic(_prefetch_at)
"""`prefetch_at(rows, slot, column)`: the same for the cache line of `rows[slot, column]`
(the second line of a row that may straddle two)."""
