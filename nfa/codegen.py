"""Numba source generated from the typed IR of conditions, written to a cache directory.

Only `nfa.expr` trees reach this module, never rule text: names are generated, literals come
from typed values (`repr` of int/bool, a checked float spelling), and strings are `StringPool`
ids. Functions of strings (`lower`, `startswith`, `in` over strings, `lookup` with a string
key) become rows of per-string-id lookup arrays (`StringTables`) that the driver extends as
new ids appear in the pool, so the kernels never touch text.

Two kinds of module are generated, each named by a hash of its source and of the kernel
sources it compiles in (so an unchanged rule set reuses the machine code that
`@njit(cache=True)` stored next to the file):

- a pure module: `pure_eval(E, T, out)` fills a bool matrix [atom, event] with every atom
  that reads no stage, deduplicated over all rules of an engine, before the step kernels;
- a program module: `iter_atom(j, r, i, S, E, T)` evaluates iterative atom j for run row r
  and event i from the run's aggregate slots, and `step(...)` is the cached wrapper that
  compiles `nfa.kernel.process_events` specialised for it. Programs with the same
  iterative atoms share one module.

Null semantics follow `nfa.interpret`: each value is a (value, is-null) pair, operators
propagate null, `and`/`or` are three-valued, `is null` tests it, division by zero is null
and a condition holds only if it is true.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import math
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType

from nfa import expr as ir
from nfa.batch import StringPool
from nfa.kernel_layout import AG_COUNT, AG_FLOAT, AG_INT, AG_OK, Layout
from nfa.kernel_store import R_NODE
from nfa.program import Schema
from nfa.string_tables import StringTables, TableKey

CODEGEN_VERSION = "2"
_KERNEL_FILES = (
    "kernel.py",
    "kernel_skip.py",
    "kernel_store.py",
    "kernel_keys.py",
    "kernel_bounds.py",
    "kernel_layout.py",
    "kernel_runs.py",
    "kernel_intrinsics.py",
    "codegen.py",
)


def cache_dir() -> Path:
    """Where generated modules (and Numba's machine code beside them) are kept."""
    configured = os.environ.get("CEP_CACHE_DIR")
    path = Path(configured) if configured else Path.home() / ".cache" / "cep" / "kernels"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _kernel_digest() -> str:
    here = Path(__file__).parent
    digest = hashlib.sha256(CODEGEN_VERSION.encode())
    for name in _KERNEL_FILES:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()


def load_module(source: str, prefix: str) -> ModuleType:
    """Write `source` to the cache directory under a name hashed from it, and import it."""
    digest = hashlib.sha256((_kernel_digest() + source).encode()).hexdigest()[:24]
    name = f"cep_{prefix}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    folder = cache_dir()
    path = folder / f"{name}.py"
    if not path.exists():  # never rewrite: a new mtime would invalidate Numba's cache
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            handle.write(source)
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def float_literal(value: float) -> str:
    if math.isnan(value):
        return "math.nan"
    if math.isinf(value):
        return "math.inf" if value > 0 else "(-math.inf)"
    return repr(float(value))


def _placeholder(type_: ir.Type) -> str:
    return {ir.Type.FLOAT: "0.0", ir.Type.BOOL: "False"}.get(type_, "0")


class ExprWriter:
    """Emits straight-line code computing (value, is-null) variables for expressions."""

    def __init__(
        self,
        schema: Schema,
        pool: StringPool,
        tables: StringTables,
        lookups: tuple[tuple[tuple[ir.ConstValue, ir.ConstValue], ...], ...] = (),
        layout: Layout | None = None,
    ):
        self.schema, self.pool, self.tables, self.lookups = schema, pool, tables, lookups
        self.layout = layout
        self.lines: list[str] = []
        self.counter = 0

    def literal(self, value: ir.ConstValue, type_: ir.Type) -> str:
        if type_ is ir.Type.STRING:  # compiled in: the pool must never release it
            ident = self.pool.intern(str(value))
            self.pool.pin(ident)
            return str(ident)
        if type_ is ir.Type.FLOAT:
            return float_literal(float(value))  # type: ignore[arg-type]
        if type_ is ir.Type.BOOL:
            return repr(bool(value))
        return repr(int(value))  # type: ignore[arg-type]

    def assign(self, value: str, null: str, indent: str) -> tuple[str, str]:
        self.counter += 1
        v, n = f"v{self.counter}", f"n{self.counter}"
        self.lines.append(f"{indent}{n} = {null}")
        self.lines.append(f"{indent}{v} = {value}")
        return v, n

    def gen(self, node: ir.Expr, indent: str) -> tuple[str, str]:
        if isinstance(node, ir.Const):
            if node.value is None or node.type is ir.Type.NULL:
                return _placeholder(node.type), "True"
            return self.literal(node.value, node.type), "False"
        if isinstance(node, ir.Field):
            column = self.schema.columns[node.column]
            if column.type is ir.Type.FLOAT:
                value = f"fl[{column.slot}, i]"
            elif column.type is ir.Type.BOOL:
                value = f"(it[{column.slot}, i] != 0)"
            else:
                value = f"it[{column.slot}, i]"
            return self.assign(value, f"not va[{node.column}, i]", indent)
        if isinstance(node, ir.EventTime):
            return "ts[i]", "False"
        if isinstance(node, ir.StageAgg):
            return self.stage_agg(node, indent)
        return self.op(node, indent)

    def stage_agg(self, node: ir.StageAgg, indent: str) -> tuple[str, str]:
        """Read a run's aggregate slot (`nfa.kernel_layout`), or count distinct values over
        the run's stored events."""
        assert self.layout is not None
        if node.kind is ir.AggKind.COUNT_DISTINCT:
            if node.column < 0:
                call = f"count_distinct_int(S, R[r, {R_NODE}], {node.stage}, -1, 0)"
            else:
                column = self.schema.columns[node.column]
                fn = "float" if column.type.stored_as_float else "int"
                vrow = self.layout.columns.index(node.column)
                slot = self.layout.value_index[node.column]
                call = f"count_distinct_{fn}(S, R[r, {R_NODE}], {node.stage}, {vrow}, {slot})"
            return self.assign(call, "False", indent)
        row = self.layout.agg_row(node)
        ni = int(row[AG_COUNT])
        if node.kind is ir.AggKind.COUNT:
            return self.assign(f"RAN[r, {ni}]", "False", indent)
        floaty = node.column >= 0 and self.schema.columns[node.column].type.stored_as_float
        raw = f"RAF[r, {int(row[AG_FLOAT])}]" if floaty else f"RAI[r, {int(row[AG_INT])}]"
        if node.kind in (ir.AggKind.FIRST, ir.AggKind.LAST):
            null = f"RAN[r, {ni}] == 0 or not RAO[r, {int(row[AG_OK])}]"
        else:
            null = f"RAN[r, {ni}] == 0"
        if node.kind is ir.AggKind.AVG:
            return self.assign(f"({raw} / RAN[r, {ni}]) if RAN[r, {ni}] > 0 else 0.0", null, indent)
        if node.type is ir.Type.BOOL:
            raw = f"({raw} != 0)"
        return self.assign(raw, null, indent)

    def op(self, node: ir.Op, indent: str) -> tuple[str, str]:
        op = node.op
        if op == "stream_is":
            return self.assign(f"st[i] == {int(node.params[0])}", "False", indent)  # type: ignore[arg-type]
        args = [self.gen(a, indent) for a in node.args]
        nulls = " or ".join(f"({n})" for _, n in args) or "False"
        if op in ("and", "or"):
            (v1, n1), (v2, n2) = args
            if op == "and":
                false = f"((not {n1}) and (not {v1})) or ((not {n2}) and (not {v2}))"
                v, n = self.assign(f"(not {n1}) and {v1} and (not {n2}) and {v2}", "False", indent)
                self.lines.append(f"{indent}{n} = (not ({false})) and ({n1} or {n2})")
                return v, n
            true = f"((not {n1}) and {v1}) or ((not {n2}) and {v2})"
            v, n = self.assign(true, "False", indent)
            self.lines.append(f"{indent}{n} = (not {v}) and ({n1} or {n2})")
            return v, n
        if op == "is_null":
            return self.assign(args[0][1], "False", indent)
        if op == "not":
            return self.assign(f"not {args[0][0]}", args[0][1], indent)
        if op in ir.COMPARISONS:
            return self.assign(f"{args[0][0]} {op} {args[1][0]}", nulls, indent)
        if op in ir.ARITHMETIC:
            return self.arithmetic(node, args, nulls, indent)
        if op == "neg":
            return self.assign(f"-{args[0][0]}", nulls, indent)
        if op == "abs":
            return self.assign(f"abs({args[0][0]})", nulls, indent)
        if op in ("min", "max"):
            (v1, _), (v2, _) = args
            pick = f"{v1} if not ({v2} {'<' if op == 'min' else '>'} {v1}) else {v2}"
            if node.type is ir.Type.FLOAT:
                pick = f"float({pick})"
            return self.assign(pick, nulls, indent)
        if op == "geo_km":
            floats = ", ".join(f"float({v})" for v, _ in args)
            return self.assign(f"_geo_km({floats})", nulls, indent)
        return self.table_op(node, args, nulls, indent)

    def arithmetic(
        self, node: ir.Op, args: list[tuple[str, str]], nulls: str, indent: str
    ) -> tuple[str, str]:
        (v1, _), (v2, _) = args
        op = node.op
        if op in ("+", "-", "*"):
            return self.assign(f"{v1} {op} {v2}", nulls, indent)
        floaty = any(a.type is ir.Type.FLOAT for a in node.args)
        null = f"{nulls} or ({v2} == 0)"
        zero = _placeholder(node.type)
        if op == "/":
            value = f"{v1} / {v2}" if node.type is ir.Type.FLOAT else f"int({v1} / {v2})"
        else:
            value = f"np.fmod(float({v1}), float({v2}))"
            value = value if floaty else f"int({value})"
        self.counter += 1
        v, n = f"v{self.counter}", f"n{self.counter}"
        self.lines.append(f"{indent}{n} = {null}")
        self.lines.append(f"{indent}{v} = ({value}) if not {n} else {zero}")
        return v, n

    def table_op(
        self, node: ir.Op, args: list[tuple[str, str]], nulls: str, indent: str
    ) -> tuple[str, str]:
        op = node.op
        (v1, n1) = args[0]
        on_string = node.args[0].type is ir.Type.STRING
        if op == "in" and not on_string:
            tests = [
                f"({v1} == {self.literal(p, _const_type(p))})"
                for p in node.params
                if p is not None and not isinstance(p, str)
            ]
            return self.assign(" or ".join(tests) or "False", nulls, indent)
        if op == "lookup" and not on_string:
            return self.inline_lookup(node, v1, n1, indent)
        if op == "in":
            key: TableKey = ("in", tuple(node.params))
        elif op == "lookup":
            key = ("lookup", self.lookups[int(node.params[0])])  # type: ignore[arg-type]
        else:
            key = ("fn", op, tuple(node.params))
        row = self.tables.row(key)
        probe = f"({v1} if not {n1} else 0)"
        if op == "lookup":
            array = "stabf" if node.type is ir.Type.FLOAT else "stab"
            value = f"{array}[{row}, {probe}]"
            null = f"{n1} or not stok[{row}, {probe}]"
        else:
            value = f"stab[{row}, {probe}]"
            null = n1
        if node.type is ir.Type.BOOL:
            value = f"({value} != 0)"
        return self.assign(value, null, indent)

    def inline_lookup(self, node: ir.Op, v1: str, n1: str, indent: str) -> tuple[str, str]:
        self.counter += 1
        v, n = f"v{self.counter}", f"n{self.counter}"
        self.lines.append(f"{indent}{v} = {_placeholder(node.type)}")
        self.lines.append(f"{indent}{n} = True")
        first = True
        entries = self.lookups[int(node.params[0])]  # type: ignore[arg-type]
        for k, value in entries:
            if k is None or isinstance(k, str):
                continue
            keyword = "if" if first else "elif"
            lead = f"{indent}{keyword} (not {n1}) and {v1} == {self.literal(k, _const_type(k))}:"
            self.lines.append(lead)
            if value is None:
                self.lines.append(f"{indent}    {n} = True")
            else:
                self.lines.append(f"{indent}    {v} = {self.literal(value, node.type)}")
                self.lines.append(f"{indent}    {n} = False")
            first = False
        return v, n


def _const_type(value: ir.ConstValue) -> ir.Type:
    if isinstance(value, bool):
        return ir.Type.BOOL
    if isinstance(value, float):
        return ir.Type.FLOAT
    return ir.Type.INT


_HEADER = '''"""Generated by nfa.codegen from typed conditions; do not edit."""
import math

import numpy as np
from numba import njit

from nfa.kernel import *  # noqa: F403 - the kernel template below uses its names
from nfa.kernel_runs import *  # noqa: F403
from nfa.kernel_skip import *  # noqa: F403
from nfa.kernel_store import *  # noqa: F403


@njit(cache=True)
def _geo_km(lat1, lon1, lat2, lon2):
    rad = math.pi / 180.0
    p1 = lat1 * rad
    p2 = lat2 * rad
    dp = p2 - p1
    dl = (lon2 - lon1) * rad
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(a)))

'''

_UNPACK_EVENT = [
    "    fl = E[0]",
    "    it = E[1]",
    "    va = E[2]",
    "    ts = E[3]",
    "    st = E[4]",
    "    stab = T[0]",
    "    stabf = T[1]",
    "    stok = T[2]",
]


Lookups = tuple[tuple[tuple[ir.ConstValue, ir.ConstValue], ...], ...]


def pure_source(
    atoms: list[tuple[ir.Expr, Lookups]], schema: Schema, pool: StringPool, tables: StringTables
) -> str:
    """`pure_eval(E, T, out)`: out[a, i] = atom a holds for event i, for every event.

    Each atom comes with its program's lookup tables (an atom names tables by index).
    """
    writer = ExprWriter(schema, pool, tables)
    for a, (atom, lookups) in enumerate(atoms):
        writer.lookups = lookups
        v, n = writer.gen(atom, "        ")
        writer.lines.append(f"        out[{a}, i] = (not {n}) and {v}")
    body = ["@njit(cache=True)", "def pure_eval(E, T, out):", *_UNPACK_EVENT]
    body += ["    for i in range(ts.shape[0]):", *writer.lines, "        pass", ""]
    return _HEADER + "\n".join(body) + "\n"


def program_source(
    atoms: list[ir.Expr],
    schema: Schema,
    pool: StringPool,
    tables: StringTables,
    lookups: Lookups,
    layout: Layout,
) -> str:
    """`iter_atom(j, r, i, S, E, T)` for the iterative atoms, and the cached `step`."""
    writer = ExprWriter(schema, pool, tables, lookups, layout)
    unpack = [
        "    R = S[0]",
        "    RAI = S[1]",
        "    RAF = S[2]",
        "    RAN = S[3]",
        "    RAO = S[4]",
        "    N = S[5]",
    ]
    for j, atom in enumerate(atoms):
        writer.lines.append(f"    if j == {j}:")
        v, n = writer.gen(atom, "        ")
        writer.lines.append(f"        return (not {n}) and {v}")
    body = ["@njit(cache=True)", "def iter_atom(j, r, i, S, E, T):", *_UNPACK_EVENT, *unpack]
    body += [*writer.lines, "    return False", "", ""]
    return _HEADER + "\n".join(body) + "\n" + _kernel_template()


def _kernel_template() -> str:
    """The source of the kernels that call `iter_atom`, to compile against this module's."""
    from nfa import kernel

    parts = [inspect.getsource(f.py_func) for f in kernel.SPECIALISED]
    return "\n\n".join(parts) + "\n\nstep = process_events\n"
