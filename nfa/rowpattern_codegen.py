"""Numba source for a SQL rule's DEFINE conditions and MEASURES, with `evaluate`'s semantics.

`kernel_functions` turns the `nfa.rowpattern_expr` trees of a `SqlProgram` into two jitted
functions for the Numba row-pattern kernel: `condition` (what `nfa.rowpattern_key._condition`
answers) and `measures` (what `_measures` and `_all_rows` compute). As in `nfa.codegen`, no
rule text reaches the source: names are generated, literals come from typed values and
strings are pool ids (`intern`), so the source holds no string literal at all.

Rows: column c of a key's local row t is `valid[lo + t, c]` (not null) and its value
`floats[lo + t, c]` (DOUBLE) or `ints[lo + t, c]` (BIGINT, BOOLEAN as 0/1, VARCHAR as pool
id); rows 0..n-1 are received, `complete` says no more will come. Every value is a pair of
variables (value, valid). A run-time error (division or modulo by zero: RowPatternError) and
"needs a row not received yet" (NeedMoreRows) leave the code by an early return, in the same
order as the tree walk raises them, which is why the code mirrors its evaluation order:
strict operators evaluate every argument left to right, `if` and `coalesce` are lazy, and
`and`/`or` evaluate in order but remember an error and raise it only if no operand decided.
An `and`/`or` operand that can fail, and a measure that can fail (its error makes it null),
get their own `_rp_` helper returning (status, value, valid): 0 ok, 1 error, 2 needs rows.
(Measured: a one-pass loop left by `break` instead compiles no faster, a function per
measure slower; Numba's `inline="always"` slower still.)

Types follow the Python values `evaluate` produces, not the declared `RType` alone: a
node's *kind* is bool, int, float, str or null (a NULL literal, or a strict operator over
one). Supported: constants, columns, CLASSIFIER() (as a VARCHAR value), MATCH_NUMBER(),
navigation (FIRST/LAST/PREV/NEXT, RUNNING/FINAL), the aggregates count, sum, avg, min, max,
bool_and, bool_or, arbitrary, and the calls + - * / % neg abs not and or = <> < <= > >=
between in is_null if coalesce and casts to integer/bigint/double/boolean; mixed BIGINT and
DOUBLE arithmetic and comparison as Python does (int/float comparisons are exact). Refused
(`Unsupported`, the rule stays on the Python engine): string functions and LIKE, `||`,
arrays, ordering strings, arithmetic on booleans, casts from DOUBLE or VARCHAR to integer,
array_agg/max_by/min_by, sum/avg/min/max over VARCHAR or BOOLEAN, `if`/`coalesce` whose
branches have different kinds, and a measure whose kind differs from its declared type
(its Python value would not have the type the caller decodes).

Quirks of the tree walk kept on purpose: a DEFINE holds only if its value `is True` (an
int 1 does not); CLASSIFIER() of the nameless gap label of `_absent` is ''; a measure's own
row is start-1 for an empty match, and a column read there at row -1 reads the last row
(Python's `rows[-1]`; the front end never reads the focus row outside navigation). Float
sums repeat `sum()` of the Python running this (Neumaier-compensated from 3.12 on).

Known differences, all beyond int64: Python ints are unbounded, the kernel's wrap (sums,
products, `abs` and negation of the smallest int64), and an int average divides two doubles
rather than rounding the exact quotient (identical while the sum is below 2**53).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from nfa.codegen import float_literal
from nfa.rowpattern_expr import Agg, Call, Classifier, Col, Const, MatchNumber, Nav, RExpr, RType
from nfa.rowpattern_rule import SqlProgram


class Unsupported(Exception):
    """An expression the generated kernel does not handle (the rule stays on the Python row-pattern engine)."""


# Kinds: the Python type of a node's non-null values.
_B, _I, _F, _S, _N = "bool", "int", "float", "str", "null"
_DEFAULT = {_B: "False", _I: "0", _F: "0.0", _S: "0", _N: "0"}
_COLUMN = {RType.BOOLEAN: _B, RType.BIGINT: _I, RType.DOUBLE: _F, RType.VARCHAR: _S}
_NUMERIC = (_I, _F)
_INT64 = (-(2**63), 2**63 - 1)

#: What every expression body sees: the frame (`current` ends RUNNING, `last` FINAL).
_FRAME = "start, current, last, labels, ints, floats, valid, lo, n, complete, number"
_ROWS = "labels, ints, floats, valid, lo, n, complete, number"
_CONDITION = f"label, start, current, {_ROWS}"
_MEASURES = f"start, mlen, current, {_ROWS}, out_i, out_f, out_v"
_JIT = "@nb.njit(cache=True)"

_COMPARE = {"=": "==", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
#: `_rp_cmp_if(i, f)` is -1, 0, 1 (i below, equal to, above f) or 2 (f is NaN).
_CMP_CODES = {
    "=": "{} == 0",
    "<>": "{} != 0",
    "<": "{} == -1",
    "<=": "-1 <= {} <= 0",
    ">": "{} == 1",
    ">=": "0 <= {} <= 1",
}
_MIRROR = {"=": "=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_ARITHMETIC = ("+", "-", "*", "/", "%")
#: CPython 3.12 made `sum()` of floats compensated (Neumaier); the kernel follows the Python
#: that generates it, as that is the one the Python engine would run on.
_COMPENSATED_SUM = sys.version_info >= (3, 12)
_CASTS = {"cast_integer": _I, "cast_bigint": _I, "cast_double": _F, "cast_boolean": _B}

_SHARED = {
    "_rp_cmp_if": f"""{_JIT}
def _rp_cmp_if(i, f):
    if f != f:
        return 2
    if f >= 9223372036854775808.0:
        return -1
    if f < -9223372036854775808.0:
        return 1
    g = np.floor(f)
    j = np.int64(g)
    if i < j:
        return -1
    if i > j:
        return 1
    if f > g:
        return -1
    return 0
""",
    "_rp_fmod": f"""{_JIT}
def _rp_fmod(a, b):
    m = np.fmod(a, b)
    if m != 0:
        if (b < 0) != (m < 0):
            m += b
    else:
        m = math.copysign(0.0, b)
    return m
""",
}


def kernel_functions(sp: SqlProgram, intern: Callable[[str], int]) -> str:
    """Module-level source of the jitted `condition` and `measures` of `sp` (and the `_rp_`
    names they use), to append to a module that already imported `math`, `numba as nb` and
    `numpy as np`; `intern` gives a string's pool id. Raises Unsupported when an expression
    is outside the supported set.

    `condition(label, start, current, labels, ints, floats, valid, lo, n, complete, number)`
    is 1 if label's DEFINE (None: true) is True at row `current`, rows start..current mapped
    to labels[0..current-start]; 0 if it is false, NULL, not a boolean or fails; 2 if it
    reads a row not received. `measures(start, mlen, current, labels, ints, floats, valid,
    lo, n, complete, number, out_i, out_f, out_v)` evaluates the measures in order over the
    match start..start+mlen-1 (RUNNING up to `current`, which is also the row they are
    evaluated at) into out_f[m] (DOUBLE) or out_i[m] (BIGINT, BOOLEAN 0/1, VARCHAR pool id)
    and out_v[m] (not NULL; a failing measure is NULL) and returns 0, or 2 as soon as one
    reads a row not received (the outputs are then meaningless).
    """
    module = _Module(intern)
    program = sp.query.program
    cond = _Body(module, 1)
    cond.emit("last = current")
    for label, define in enumerate(program.defines):
        if define is None:
            continue
        with cond.block(f"if label == {label}:"):
            scope = _Scope("current", True, False, "return 2", "return 0")
            value = cond.expr(define, scope)
            if module.kind(define) == _B:
                with cond.block(f"if {value.valid} and {value.value}:"):
                    cond.emit("return 1")
            cond.emit("return 0")
    cond.emit("return 1")
    meas = _Body(module, 1)
    meas.emit("last = start + mlen - 1")
    for m, measure in enumerate(sp.query.measures):
        meas.measure(m, measure)
    meas.emit("return 0")
    ids = [int(intern(name)) for name in program.names]
    ids.append(int(intern("")))  # the nameless gap label of `_absent`
    parts = [f"_rp_names = np.array({ids!r}, dtype=np.int64)\n", *module.helpers]
    parts.append(f"{_JIT}\ndef condition({_CONDITION}):\n" + cond.text())
    parts.append(f"{_JIT}\ndef measures({_MEASURES}):\n" + meas.text())
    return "\n\n".join(parts) + "\n"


@dataclass(frozen=True, slots=True)
class _Value:
    kind: str
    value: str  # a variable or literal
    valid: str


@dataclass(frozen=True, slots=True)
class _Scope:
    """Where an expression is evaluated and how its body leaves early."""

    focus: str  # the variable holding the focus row
    received: bool  # the focus row is known to be below n (else reading it may need more)
    wrap: bool  # a measure's own row, which is start-1 (maybe -1) for an empty match
    more: str  # the statement when a row not received is needed
    error: str | None  # the statement on a run-time error (None: none can happen here)

    def at(self, focus: str, received: bool) -> _Scope:
        return replace(self, focus=focus, received=received, wrap=False)


class _Module:
    """What the functions of one rule share: names, inferred kinds, helper functions."""

    def __init__(self, intern: Callable[[str], int]):
        self.intern = intern
        self.counter = 0
        self.kinds: dict[int, str] = {}
        self.helpers: list[str] = []
        self.shared: set[str] = set()

    def fresh(self) -> int:
        self.counter += 1
        return self.counter

    def use(self, name: str) -> str:
        if name not in self.shared:
            self.shared.add(name)
            self.helpers.insert(0, _SHARED[name])
        return name

    def kind(self, e: RExpr) -> str:
        found = self.kinds.get(id(e))
        if found is None:
            found = self.kinds[id(e)] = _infer(e, self.kind)
        return found


def _infer(e: RExpr, kind: Callable[[RExpr], str]) -> str:
    """The kind of `e`'s values; raises Unsupported outside the supported set."""
    if e.type in (RType.ARRAY, RType.UNKNOWN):
        raise Unsupported(f"{e.type.value} values")
    if isinstance(e, Const):
        return _const_kind(e.value)
    if isinstance(e, Col):
        if e.type not in _COLUMN or not isinstance(e.index, int) or e.index < 0:
            raise Unsupported(f"a column of type {e.type.value}")
        return _COLUMN[e.type]
    if isinstance(e, Classifier):
        return _S
    if isinstance(e, MatchNumber):
        return _I
    if isinstance(e, Nav):
        for offset in (e.logical_offset, e.physical_offset):
            if not _INT64[0] <= 2 * offset <= _INT64[1]:
                raise Unsupported("a navigation offset beyond int64")
        if e.logical_offset < 0:
            raise Unsupported("a negative logical offset")
        return kind(e.expr)
    if isinstance(e, Agg):
        return _infer_agg(e, [kind(a) for a in e.args])
    if isinstance(e, Call):
        return _infer_call(e.op, [kind(a) for a in e.args])
    raise Unsupported(f"expression {type(e).__name__}")


def _const_kind(value: object) -> str:
    if value is None:
        return _N
    if isinstance(value, bool):
        return _B
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise Unsupported("an integer constant beyond int64")
        return _I
    if isinstance(value, float):
        return _F
    if isinstance(value, str):
        return _S
    raise Unsupported(f"a constant of type {type(value).__name__}")


def _infer_agg(e: Agg, kinds: list[str]) -> str:
    func = e.func
    if func == "count":
        if len(kinds) > 1:
            raise Unsupported("count with several arguments")
        return _I
    if len(kinds) != 1:
        raise Unsupported(f"{func} with {len(kinds)} arguments")
    (k,) = kinds
    if func in ("sum", "min", "max") and k in (*_NUMERIC, _N):
        return k
    if func == "avg" and k in (*_NUMERIC, _N):
        return _F if k in _NUMERIC else _N
    if func in ("bool_and", "bool_or") and k != _S:
        return _B
    if func == "arbitrary":
        return k
    raise Unsupported(f"aggregate {func} over {k} values")


def _infer_call(op: str, kinds: list[str]) -> str:
    strict_null = _N in kinds  # a strict operator never applies to a NULL argument
    if op in ("and", "or"):
        _truthy(kinds)
        return _B
    if op == "if":
        if len(kinds) not in (2, 3):
            raise Unsupported("if with a wrong number of arguments")
        _truthy(kinds[:1])
        return _unify(kinds[1:])
    if op == "coalesce":
        if not kinds:
            raise Unsupported("coalesce()")
        return _unify(kinds)
    if op == "is_null" and len(kinds) == 1:
        return _B
    if op == "in" and len(kinds) >= 2:
        for k in kinds[1:]:
            if _N not in (kinds[0], k):
                _comparable(kinds[0], k, "=")
        return _B
    if op in _COMPARE and len(kinds) == 2:
        if not strict_null:
            _comparable(kinds[0], kinds[1], op)
        return _B
    if op == "between" and len(kinds) == 3:
        if not strict_null:
            _comparable(kinds[1], kinds[0], "<=")
            _comparable(kinds[0], kinds[2], "<=")
        return _B
    if op == "not" and len(kinds) == 1:
        _truthy(kinds)
        return _B
    if op in _CASTS and len(kinds) == 1:
        target = _CASTS[op]
        if kinds[0] == _S or (kinds[0] == _F and target == _I):
            raise Unsupported(f"{op} from {kinds[0]}")
        return target
    if (op in _ARITHMETIC and len(kinds) == 2) or (op in ("neg", "abs") and len(kinds) == 1):
        if strict_null:
            return _N
        if any(k not in _NUMERIC for k in kinds):
            raise Unsupported(f"{op} over {', '.join(kinds)}")
        return _F if _F in kinds else _I
    raise Unsupported(f"call {op} over {', '.join(kinds)}")


def _truthy(kinds: list[str]) -> None:
    if _S in kinds:
        raise Unsupported("the truth value of a string")


def _unify(kinds: list[str]) -> str:
    known = {k for k in kinds if k != _N}
    if len(known) > 1:
        raise Unsupported(f"branches of different types ({', '.join(sorted(known))})")
    return known.pop() if known else _N


def _comparable(a: str, b: str, op: str) -> None:
    if a == b and (a != _S or op in ("=", "<>")):
        return
    if a in _NUMERIC and b in _NUMERIC:
        return
    raise Unsupported(f"{op} between {a} and {b}")


def _may_fail(e: RExpr) -> bool:
    """Whether evaluating `e` can raise RowPatternError (division or modulo by zero)."""
    if isinstance(e, Call):
        if e.op in ("/", "%") and not _nonzero(e.args[-1]):
            return True
        return any(_may_fail(a) for a in e.args)
    if isinstance(e, Agg):
        return any(_may_fail(a) for a in e.args)
    if isinstance(e, Nav):
        return _may_fail(e.expr)
    return False


def _nonzero(e: RExpr) -> bool:
    """Whether `e` is a numeric constant other than zero (a divisor that cannot fail)."""
    value = e.value if isinstance(e, Const) else None
    return isinstance(value, int | float) and not isinstance(value, bool) and value != 0


def _truth(v: _Value) -> str:
    return v.value if v.kind == _B else f"({v.value} != 0)"


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return "(-9223372036854775807 - 1)" if value == _INT64[0] else f"({int(value)!r})"
    assert isinstance(value, float)
    return f"({float_literal(value)})"


class _Body:
    """The lines of one function body."""

    def __init__(self, module: _Module, depth: int):
        self.m = module
        self.lines: list[str] = []
        self.depth = depth

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.depth + line)

    @contextmanager
    def block(self, head: str) -> Iterator[None]:
        self.emit(head)
        self.depth += 1
        size = len(self.lines)
        yield
        if len(self.lines) == size:
            self.emit("pass")
        self.depth -= 1

    def var(self, kind: str) -> tuple[int, str, str]:
        """A fresh (value, valid) pair, initialised to NULL."""
        j = self.m.fresh()
        self.emit(f"v{j} = {_DEFAULT[kind]}")
        self.emit(f"k{j} = False")
        return j, f"v{j}", f"k{j}"

    def fail(self, scope: _Scope) -> None:
        assert scope.error is not None, "an error where _may_fail said none can happen"
        self.emit(scope.error)

    # ------------------------------------------------------------------ measures
    def measure(self, m: int, e: RExpr) -> None:
        kind = self.m.kind(e)
        expected = _COLUMN.get(e.type)
        if expected is None or kind not in (expected, _N):
            raise Unsupported(f"a measure of type {e.type.value} with {kind} values")
        scope = _Scope("current", True, True, "return 2", None)
        if _may_fail(e):
            name = self.helper(e, scope)
            j = self.m.fresh()
            self.emit(f"s{j}, v{j}, k{j} = {name}(current, {_FRAME})")
            with self.block(f"if s{j} == 2:"):
                self.emit("return 2")
            with self.block(f"if s{j} == 1:"):
                self.emit(f"out_v[{m}] = False")
            with self.block("else:"):
                self.store(m, e.type, _Value(kind, f"v{j}", f"k{j}"))
        else:
            self.store(m, e.type, self.expr(e, scope))

    def store(self, m: int, rtype: RType, v: _Value) -> None:
        if v.kind == _N:
            self.emit(f"out_v[{m}] = False")
            return
        if v.kind == _B:
            self.emit(f"out_i[{m}] = 1 if {v.value} else 0")
        else:
            self.emit(f"out_{'f' if rtype is RType.DOUBLE else 'i'}[{m}] = {v.value}")
        self.emit(f"out_v[{m}] = {v.valid}")

    def helper(self, e: RExpr, scope: _Scope) -> str:
        """A function `_rp_hN(focus, frame...)` -> (status, value, valid) evaluating `e`."""
        kind = self.m.kind(e)
        j = self.m.fresh()
        default = _DEFAULT[kind]
        more, error = f"return 2, {default}, False", f"return 1, {default}, False"
        inner = _Scope("focus", scope.received, scope.wrap, more, error)
        body = _Body(self.m, 1)
        v = body.expr(e, inner)
        body.emit(f"return 0, {v.value}, {v.valid}")
        name = f"_rp_h{j}"
        self.m.helpers.append(f"{_JIT}\ndef {name}(focus, {_FRAME}):\n" + body.text())
        return name

    # ------------------------------------------------------------------ expressions
    def expr(self, e: RExpr, scope: _Scope) -> _Value:
        kind = self.m.kind(e)
        if isinstance(e, Const):
            if kind == _N:
                return _Value(_N, "0", "False")
            if kind == _S:
                return _Value(_S, f"({int(self.m.intern(str(e.value)))!r})", "True")
            return _Value(kind, _literal(e.value), "True")
        if isinstance(e, Col):
            return self.column(e, kind, scope)
        if isinstance(e, Classifier):
            _, v, k = self.var(_S)
            with self.block(f"if start <= {scope.focus} <= last:"):
                self.emit(f"{v} = _rp_names[labels[{scope.focus} - start]]")
                self.emit(f"{k} = True")
            return _Value(_S, v, k)
        if isinstance(e, MatchNumber):
            return _Value(_I, "number", "True")
        if isinstance(e, Nav):
            return self.navigate(e, kind, scope)
        if isinstance(e, Agg):
            return self.aggregate(e, kind, scope)
        assert isinstance(e, Call)
        return self.call(e, kind, scope)

    def column(self, e: Col, kind: str, scope: _Scope) -> _Value:
        row = scope.focus
        if not scope.received:
            with self.block(f"if {row} >= n:"):
                self.emit(scope.more)
        if scope.wrap:  # Python's rows[-1] of an empty match at row 0 reads the last row
            row = f"({row} if {row} >= 0 else n + {row})"
        j = self.m.fresh()
        array = "floats" if kind == _F else "ints"
        self.emit(f"k{j} = valid[lo + {row}, {e.index}]")
        test = " != 0" if kind == _B else ""
        self.emit(f"v{j} = {array}[lo + {row}, {e.index}]{test}")
        return _Value(kind, f"v{j}", f"k{j}")

    def member(self, labels: frozenset[int] | None, row: str) -> str:
        if labels is None:
            return "True"
        tests = [f"labels[{row} - start] == {int(label)}" for label in sorted(labels)]
        return " or ".join(tests) or "False"

    def navigate(self, e: Nav, kind: str, scope: _Scope) -> _Value:
        end = "last" if e.final else "current"
        k = int(e.logical_offset)
        j, v, valid = self.var(kind)
        t = f"t{j}"
        self.emit(f"{t} = -1")
        if e.labels is None:
            pick = f"{end} - {k}" if e.last else f"start + {k}"
            with self.block(f"if {end} - start >= {k}:"):
                self.emit(f"{t} = {pick}")
        else:
            rows = f"range({end}, start - 1, -1)" if e.last else f"range(start, {end} + 1)"
            self.emit(f"c{j} = 0")
            with (
                self.block(f"for r{j} in {rows}:"),
                self.block(f"if {self.member(e.labels, f'r{j}')}:"),
            ):
                with self.block(f"if c{j} == {k}:"):
                    self.emit(f"{t} = r{j}")
                    self.emit("break")
                self.emit(f"c{j} += 1")
        with self.block(f"if {t} >= 0:"):
            if e.physical_offset:
                self.emit(f"{t} += {_literal(int(e.physical_offset))}")
            with self.block(f"if {t} >= 0 and not (complete and {t} >= n):"):
                inner = self.expr(e.expr, scope.at(t, False))
                if kind != _N:
                    self.emit(f"{v} = {inner.value}")
                    self.emit(f"{valid} = {inner.valid}")
        return _Value(kind, v, valid)

    def aggregate(self, e: Agg, kind: str, scope: _Scope) -> _Value:
        end = "last" if e.final else "current"
        func = e.func
        j = self.m.fresh()
        c, r, acc, comp = f"c{j}", f"r{j}", f"a{j}", f"z{j}"
        if func == "count" and not e.args and e.labels is None:
            self.emit(f"v{j} = {end} - start + 1")
            return _Value(_I, f"v{j}", "True")
        self.emit(f"{c} = 0")
        akind = self.m.kind(e.args[0]) if e.args else _N
        init = {"bool_and": "True", "bool_or": "False"}.get(func, _DEFAULT[akind])
        if func in ("sum", "avg") and akind == _F:
            init = "0.0"
        self.emit(f"{acc} = {init}")
        compensated = akind == _F and func in ("sum", "avg") and _COMPENSATED_SUM
        if compensated:
            self.emit(f"{comp} = 0.0")
        with (
            self.block(f"for {r} in range(start, {end} + 1):"),
            self.block(f"if {self.member(e.labels, r)}:"),
        ):
            if not e.args:
                self.emit(f"{c} += 1")
            else:
                a = self.expr(e.args[0], scope.at(r, True))
                if akind != _N:
                    with self.block(f"if {a.valid}:"):
                        self.accumulate(func, a, c, acc, comp, compensated)
                        self.emit(f"{c} += 1")
        if func == "count":
            return _Value(_I, c, "True")
        if compensated:
            with self.block(f"if {comp} != 0 and math.isfinite({comp}):"):
                self.emit(f"{acc} += {comp}")
        if kind == _N:
            return _Value(_N, "0", "False")
        if func == "avg":
            self.emit(f"v{j} = {acc} / {c} if {c} > 0 else 0.0")
            return _Value(_F, f"v{j}", f"{c} > 0")
        return _Value(kind, acc, f"({c} > 0)")

    def accumulate(
        self, func: str, a: _Value, c: str, acc: str, comp: str, compensated: bool
    ) -> None:
        x = a.value
        if func in ("sum", "avg"):
            if not compensated:
                self.emit(f"{acc} += {x}")
                return
            # CPython's float sum(): 0 + first item, then Neumaier's compensation
            with self.block(f"if {c} == 0:"):
                self.emit(f"{acc} = 0.0 + {x}")
            with self.block("else:"):
                t = f"w{comp[1:]}"
                self.emit(f"{t} = {acc} + {x}")
                with self.block(f"if abs({acc}) >= abs({x}):"):
                    self.emit(f"{comp} += ({acc} - {t}) + {x}")
                with self.block("else:"):
                    self.emit(f"{comp} += ({x} - {t}) + {acc}")
                self.emit(f"{acc} = {t}")
        elif func in ("min", "max"):  # Python keeps the first of equal or unordered items
            with self.block(f"if {c} == 0 or {x} {'<' if func == 'min' else '>'} {acc}:"):
                self.emit(f"{acc} = {x}")
        elif func in ("bool_and", "bool_or"):
            test = f"not {_truth(a)}" if func == "bool_and" else _truth(a)
            with self.block(f"if {test}:"):
                self.emit(f"{acc} = {func == 'bool_or'}")
        else:  # arbitrary: the first non-null value
            with self.block(f"if {c} == 0:"):
                self.emit(f"{acc} = {x}")

    # ------------------------------------------------------------------ calls
    def call(self, e: Call, kind: str, scope: _Scope) -> _Value:
        op = e.op
        if op in ("and", "or"):
            return self.logic(e, scope)
        if op == "if":
            return self.branch(e, kind, scope)
        if op == "coalesce":
            _, v, k = self.var(kind)
            self.coalesce(list(e.args), v, k, scope)
            return _Value(kind, v, k)
        args = [self.expr(a, scope) for a in e.args]  # strict: every argument, in order
        if op == "is_null":
            j = self.m.fresh()
            self.emit(f"v{j} = not {args[0].valid}")
            return _Value(_B, f"v{j}", "True")
        if op == "in":
            return self.member_of(args)
        _, v, k = self.var(kind)
        if any(a.kind == _N for a in args):
            return _Value(kind, v, k)
        with self.block(f"if {' and '.join(a.valid for a in args)}:"):
            self.emit(f"{v} = {self.strict(op, args, kind, scope, _nonzero(e.args[-1]))}")
            self.emit(f"{k} = True")
        return _Value(kind, v, k)

    def strict(self, op: str, args: list[_Value], kind: str, scope: _Scope, safe: bool) -> str:
        """The value of a strict call over non-null arguments (statements before it)."""
        x = args[0].value
        if op in _COMPARE:
            return self.compare(op, args[0], args[1])
        if op == "between":
            low = self.compare("<=", args[1], args[0])
            return f"({low}) and ({self.compare('<=', args[0], args[2])})"
        if op == "not":
            return f"not {_truth(args[0])}"
        if op in _CASTS:
            source = args[0].kind
            if kind == _B:
                return x if source == _B else f"({x} != 0)"
            if source == _B:
                return f"(1.0 if {x} else 0.0)" if kind == _F else f"(1 if {x} else 0)"
            return f"float({x})" if kind == _F else x
        if op == "neg":
            return f"-{x}"
        if op == "abs":
            return f"abs({x})"
        y = args[1].value
        if kind == _F:
            x, y = (a.value if a.kind == _F else f"float({a.value})" for a in args)
        if op in ("/", "%"):
            if not safe:  # `safe`: the divisor is a non-zero constant
                with self.block(f"if {args[1].value} == 0:"):
                    self.fail(scope)
            if kind == _F:
                return f"{x} / {y}" if op == "/" else f"{self.m.use('_rp_fmod')}({x}, {y})"
            j = self.m.fresh()
            if op == "/":  # truncated toward zero
                self.emit(f"q{j} = abs({x}) // abs({y})")
                return f"q{j} if ({x} >= 0) == ({y} >= 0) else -q{j}"
            self.emit(f"q{j} = abs({x}) % abs({y})")  # the dividend's sign
            return f"q{j} if {x} >= 0 else -q{j}"
        return f"{x} {op} {y}"

    def compare(self, op: str, a: _Value, b: _Value) -> str:
        if a.kind == b.kind:
            return f"({a.value} {_COMPARE[op]} {b.value})"
        if a.kind == _F:  # float against int: ask the int's side
            a, b, op = b, a, _MIRROR[op]
        test = f"{self.m.use('_rp_cmp_if')}({a.value}, {b.value})"
        return f"({_CMP_CODES[op].format(test)})"

    def member_of(self, args: list[_Value]) -> _Value:
        needle, candidates = args[0], args[1:]
        _, v, k = self.var(_B)
        if needle.kind == _N:
            return _Value(_B, v, k)
        found = [
            f"({c.valid} and {self.compare('=', needle, c)})" for c in candidates if c.kind != _N
        ]
        unknown = [f"(not {c.valid})" if c.kind != _N else "True" for c in candidates]
        with self.block(f"if {needle.valid}:"):
            self.emit(f"{v} = {' or '.join(found) or 'False'}")
            self.emit(f"{k} = {v} or not ({' or '.join(unknown)})")
        return _Value(_B, v, k)

    def logic(self, e: Call, scope: _Scope) -> _Value:
        """`and`/`or`: in order; a deciding operand wins over an earlier operand's error."""
        stop = e.op == "or"
        j = self.m.fresh()
        decided, failed, unknown = f"d{j}", f"f{j}", f"u{j}"
        for name in (decided, failed, unknown):
            self.emit(f"{name} = False")
        for index, arg in enumerate(e.args):
            if index == 0:
                self.operand(arg, scope, stop, decided, failed, unknown)
            else:
                with self.block(f"if not {decided}:"):
                    self.operand(arg, scope, stop, decided, failed, unknown)
        v, k = f"v{j}", f"k{j}"
        with self.block(f"if {decided}:"):
            self.emit(f"{v} = {stop}")
            self.emit(f"{k} = True")
        if any(_may_fail(a) for a in e.args):
            with self.block(f"elif {failed}:"):
                self.fail(scope)
        with self.block(f"elif {unknown}:"):
            self.emit(f"{v} = False")
            self.emit(f"{k} = False")
        with self.block("else:"):
            self.emit(f"{v} = {not stop}")
            self.emit(f"{k} = True")
        return _Value(_B, v, k)

    def operand(
        self, arg: RExpr, scope: _Scope, stop: bool, decided: str, failed: str, unknown: str
    ) -> None:
        if _may_fail(arg):
            name = self.helper(arg, scope)
            j = self.m.fresh()
            self.emit(f"s{j}, v{j}, k{j} = {name}({scope.focus}, {_FRAME})")
            with self.block(f"if s{j} == 2:"):
                self.emit(scope.more)
            with self.block(f"if s{j} == 1:"):
                self.emit(f"{failed} = True")
            with self.block("else:"):
                self.decide(_Value(self.m.kind(arg), f"v{j}", f"k{j}"), stop, decided, unknown)
        else:
            self.decide(self.expr(arg, scope), stop, decided, unknown)

    def decide(self, a: _Value, stop: bool, decided: str, unknown: str) -> None:
        if a.kind == _N:
            self.emit(f"{unknown} = True")
            return
        with self.block(f"if not {a.valid}:"):
            self.emit(f"{unknown} = True")
        with self.block(f"elif {'' if stop else 'not '}{_truth(a)}:"):
            self.emit(f"{decided} = True")

    def branch(self, e: Call, kind: str, scope: _Scope) -> _Value:
        cond = self.expr(e.args[0], scope)
        _, v, k = self.var(kind)

        def take(arg: RExpr) -> None:
            value = self.expr(arg, scope)
            if value.kind != _N:
                self.emit(f"{v} = {value.value}")
                self.emit(f"{k} = {value.valid}")

        otherwise = e.args[2] if len(e.args) > 2 else None
        if cond.kind == _N:
            if otherwise is not None:
                take(otherwise)
            return _Value(kind, v, k)
        with self.block(f"if {cond.valid} and {_truth(cond)}:"):
            take(e.args[1])
        if otherwise is not None:
            with self.block("else:"):
                take(otherwise)
        return _Value(kind, v, k)

    def coalesce(self, args: list[RExpr], v: str, k: str, scope: _Scope) -> None:
        if not args:
            return
        first = self.expr(args[0], scope)
        if first.kind == _N:
            self.coalesce(args[1:], v, k, scope)
            return
        with self.block(f"if {first.valid}:"):
            self.emit(f"{v} = {first.value}")
            self.emit(f"{k} = True")
        if len(args) > 1:
            with self.block("else:"):
                self.coalesce(args[1:], v, k, scope)
