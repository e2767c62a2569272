"""Numba statements evaluating one row-pattern expression tree, for `nfa.rowpattern_codegen`.

`Body` walks a tree whose kinds `nfa.rowpattern_codegen_kinds.infer` accepted and appends
the statements computing it to one function body, returning the (value, valid) pair of
variables or literals holding the result. The walk follows `nfa.rowpattern_expr.evaluate`'s
order, so that the early returns of the body (`Scope.more` when a row is not received yet,
`Scope.error` on division or modulo by zero) happen in the order the tree walk raises
NeedMoreRows and RowPatternError; an operand or measure that can fail is evaluated by its
own `_rp_hN` helper (`Body.helper`). `Module` is what the functions of one rule share:
generated names, inferred kinds, helper functions. The semantics (and their quirks) are
described in `nfa.rowpattern_codegen`; this module is only how they are written down.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from functools import partial

from nfa.codegen import float_literal
from nfa.rowpattern_codegen_kinds import (
    BOOL,
    CASTS,
    COMPARE,
    FLOAT,
    INT,
    INT64,
    NULL,
    STR,
    infer,
    may_fail,
    nonzero,
)
from nfa.rowpattern_expr import Agg, Call, Classifier, Col, Const, MatchNumber, Nav, RExpr

#: The decorator of every generated function.
JIT = "@nb.njit(cache=True)"
#: What every expression body sees: the frame (`current` ends RUNNING, `last` FINAL).
FRAME = "start, current, last, labels, ints, floats, valid, lo, n, complete, number, strs"
#: The value a NULL of each kind holds (its variable must have the kind's type).
_DEFAULT = {BOOL: "False", INT: "0", FLOAT: "0.0", STR: "0", NULL: "0"}
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

_SHARED = {
    "_rp_cmp_if": f"""{JIT}
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
    "_rp_fmod": f"""{JIT}
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


@dataclass(frozen=True, slots=True)
class Value:
    kind: str
    value: str  # a variable or literal
    valid: str


@dataclass(frozen=True, slots=True)
class Scope:
    """Where an expression is evaluated and how its body leaves early."""

    focus: str  # the variable holding the focus row
    received: bool  # the focus row is known to be below n (else reading it may need more)
    wrap: bool  # a measure's own row, which is start-1 (maybe -1) for an empty match
    more: str  # the statement when a row not received is needed
    error: str | None  # the statement on a run-time error (None: none can happen here)

    def at(self, focus: str, received: bool) -> Scope:
        return replace(self, focus=focus, received=received, wrap=False)


class Module:
    """What the functions of one rule share: names, inferred kinds, helper functions.

    `compensated`: float sums are Neumaier-compensated, as `sum()` is from CPython 3.12 on.
    """

    def __init__(self, intern: Callable[[str], int], compensated: bool):
        self.intern = intern
        self.compensated = compensated
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
            found = self.kinds[id(e)] = infer(e, self.kind)
        return found


def _truth(v: Value) -> str:
    return v.value if v.kind == BOOL else f"({v.value} != 0)"


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return "(-9223372036854775807 - 1)" if value == INT64[0] else f"({int(value)!r})"
    assert isinstance(value, float)
    return f"({float_literal(value)})"


class Body:
    """The lines of one function body."""

    def __init__(self, module: Module, depth: int):
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

    def fail(self, scope: Scope) -> None:
        assert scope.error is not None, "an error where may_fail said none can happen"
        self.emit(scope.error)

    def assign(self, v: str, k: str, value: Value) -> None:
        """Sets the pair (v, k) to `value` (a NULL leaves its initial NULL)."""
        if value.kind != NULL:
            self.emit(f"{v} = {value.value}")
            self.emit(f"{k} = {value.valid}")

    # ------------------------------------------------------------------ helpers
    def guarded(self, e: RExpr, scope: Scope, failed: str, then: Callable[[Value], None]) -> None:
        """`e` through its own helper: leaves by `scope.more` if it needs rows, runs
        `failed` on its error, else `then` with its value."""
        name = self.helper(e, scope)
        j = self.m.fresh()
        self.emit(f"s{j}, v{j}, k{j} = {name}({scope.focus}, {FRAME})")
        with self.block(f"if s{j} == 2:"):
            self.emit(scope.more)
        with self.block(f"if s{j} == 1:"):
            self.emit(failed)
        with self.block("else:"):
            then(Value(self.m.kind(e), f"v{j}", f"k{j}"))

    def helper(self, e: RExpr, scope: Scope) -> str:
        """A function `_rp_hN(focus, frame...)` -> (status, value, valid) evaluating `e`."""
        kind = self.m.kind(e)
        j = self.m.fresh()
        default = _DEFAULT[kind]
        more, error = f"return 2, {default}, False", f"return 1, {default}, False"
        inner = Scope("focus", scope.received, scope.wrap, more, error)
        body = Body(self.m, 1)
        v = body.expr(e, inner)
        body.emit(f"return 0, {v.value}, {v.valid}")
        name = f"_rp_h{j}"
        self.m.helpers.append(f"{JIT}\ndef {name}(focus, {FRAME}):\n" + body.text())
        return name

    # ------------------------------------------------------------------ expressions
    def expr(self, e: RExpr, scope: Scope) -> Value:
        kind = self.m.kind(e)
        if isinstance(e, Const):
            if kind == NULL:
                return Value(NULL, "0", "False")
            if kind == STR:
                return Value(STR, f"strs[{int(self.m.intern(str(e.value)))!r}]", "True")
            return Value(kind, _literal(e.value), "True")
        if isinstance(e, Col):
            return self.column(e, kind, scope)
        if isinstance(e, Classifier):
            _, v, k = self.var(STR)
            with self.block(f"if start <= {scope.focus} <= last:"):
                self.emit(f"{v} = strs[_rp_names[labels[{scope.focus} - start]]]")
                self.emit(f"{k} = True")
            return Value(STR, v, k)
        if isinstance(e, MatchNumber):
            return Value(INT, "number", "True")
        if isinstance(e, Nav):
            return self.navigate(e, kind, scope)
        if isinstance(e, Agg):
            return self.aggregate(e, kind, scope)
        assert isinstance(e, Call)
        return self.call(e, kind, scope)

    def column(self, e: Col, kind: str, scope: Scope) -> Value:
        row = scope.focus
        if not scope.received:
            with self.block(f"if {row} >= n:"):
                self.emit(scope.more)
        if scope.wrap:  # Python's rows[-1] of an empty match at row 0 reads the last row
            row = f"({row} if {row} >= 0 else n + {row})"
        j = self.m.fresh()
        array = "floats" if kind == FLOAT else "ints"
        self.emit(f"k{j} = valid[lo + {row}, {e.index}]")
        test = " != 0" if kind == BOOL else ""
        self.emit(f"v{j} = {array}[lo + {row}, {e.index}]{test}")
        return Value(kind, f"v{j}", f"k{j}")

    def member(self, labels: frozenset[int] | None, row: str) -> str:
        if labels is None:
            return "True"
        tests = [f"labels[{row} - start] == {int(label)}" for label in sorted(labels)]
        return " or ".join(tests) or "False"

    def navigate(self, e: Nav, kind: str, scope: Scope) -> Value:
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
                self.assign(v, valid, self.expr(e.expr, scope.at(t, False)))
        return Value(kind, v, valid)

    def aggregate(self, e: Agg, kind: str, scope: Scope) -> Value:
        end = "last" if e.final else "current"
        func = e.func
        j = self.m.fresh()
        c, r, acc, comp = f"c{j}", f"r{j}", f"a{j}", f"z{j}"
        if func == "count" and not e.args and e.labels is None:
            self.emit(f"v{j} = {end} - start + 1")
            return Value(INT, f"v{j}", "True")
        self.emit(f"{c} = 0")
        akind = self.m.kind(e.args[0]) if e.args else NULL
        init = {"bool_and": "True", "bool_or": "False"}.get(func, _DEFAULT[akind])
        self.emit(f"{acc} = {init}")
        compensated = akind == FLOAT and func in ("sum", "avg") and self.m.compensated
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
                if akind != NULL:
                    with self.block(f"if {a.valid}:"):
                        self.accumulate(func, a, c, acc, comp, compensated)
                        self.emit(f"{c} += 1")
        if func == "count":
            return Value(INT, c, "True")
        if compensated:
            with self.block(f"if {comp} != 0 and math.isfinite({comp}):"):
                self.emit(f"{acc} += {comp}")
        if kind == NULL:
            return Value(NULL, "0", "False")
        if func == "avg":
            self.emit(f"v{j} = {acc} / {c} if {c} > 0 else 0.0")
            return Value(FLOAT, f"v{j}", f"{c} > 0")
        return Value(kind, acc, f"({c} > 0)")

    def accumulate(
        self, func: str, a: Value, c: str, acc: str, comp: str, compensated: bool
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
        elif func in ("bool_and", "bool_or"):
            test = f"not {_truth(a)}" if func == "bool_and" else _truth(a)
            with self.block(f"if {test}:"):
                self.emit(f"{acc} = {func == 'bool_or'}")
        else:  # the first non-null value (count, arbitrary), for min and max a better one
            # (Python keeps the first of equal or unordered items)
            op = {"min": "<", "max": ">"}.get(func)
            with self.block(f"if {c} == 0{f' or {x} {op} {acc}' if op else ''}:"):
                self.emit(f"{acc} = {x}")

    # ------------------------------------------------------------------ calls
    def call(self, e: Call, kind: str, scope: Scope) -> Value:
        op = e.op
        if op in ("and", "or"):
            return self.logic(e, scope)
        if op == "if":
            return self.branch(e, kind, scope)
        if op == "coalesce":
            _, v, k = self.var(kind)
            self.coalesce(list(e.args), v, k, scope)
            return Value(kind, v, k)
        args = [self.expr(a, scope) for a in e.args]  # strict: every argument, in order
        if op == "is_null":
            j = self.m.fresh()
            self.emit(f"v{j} = not {args[0].valid}")
            return Value(BOOL, f"v{j}", "True")
        if op == "in":
            return self.member_of(args)
        _, v, k = self.var(kind)
        if any(a.kind == NULL for a in args):
            return Value(kind, v, k)
        with self.block(f"if {' and '.join(a.valid for a in args)}:"):
            self.emit(f"{v} = {self.strict(op, args, kind, scope, nonzero(e.args[-1]))}")
            self.emit(f"{k} = True")
        return Value(kind, v, k)

    def strict(self, op: str, args: list[Value], kind: str, scope: Scope, safe: bool) -> str:
        """The value of a strict call over non-null arguments (statements before it)."""
        x = args[0].value
        if op in COMPARE:
            return self.compare(op, args[0], args[1])
        if op == "between":
            low = self.compare("<=", args[1], args[0])
            return f"({low}) and ({self.compare('<=', args[0], args[2])})"
        if op == "not":
            return f"not {_truth(args[0])}"
        if op in CASTS:
            source = args[0].kind
            if kind == BOOL:
                return x if source == BOOL else f"({x} != 0)"
            if source == BOOL:
                return f"(1.0 if {x} else 0.0)" if kind == FLOAT else f"(1 if {x} else 0)"
            return f"float({x})" if kind == FLOAT else x
        if op == "neg":
            return f"-{x}"
        if op == "abs":
            return f"abs({x})"
        y = args[1].value
        if kind == FLOAT:
            x, y = (a.value if a.kind == FLOAT else f"float({a.value})" for a in args)
        if op in ("/", "%"):
            if not safe:  # `safe`: the divisor is a non-zero constant
                with self.block(f"if {args[1].value} == 0:"):
                    self.fail(scope)
            if kind == FLOAT:
                return f"{x} / {y}" if op == "/" else f"{self.m.use('_rp_fmod')}({x}, {y})"
            # the quotient truncated toward zero, the remainder with the dividend's sign
            j = self.m.fresh()
            self.emit(f"q{j} = abs({x}) {'//' if op == '/' else '%'} abs({y})")
            sign = f"({x} >= 0) == ({y} >= 0)" if op == "/" else f"{x} >= 0"
            return f"q{j} if {sign} else -q{j}"
        return f"{x} {op} {y}"

    def compare(self, op: str, a: Value, b: Value) -> str:
        if a.kind == b.kind:
            return f"({a.value} {COMPARE[op]} {b.value})"
        if a.kind == FLOAT:  # float against int: ask the int's side
            a, b, op = b, a, _MIRROR[op]
        test = f"{self.m.use('_rp_cmp_if')}({a.value}, {b.value})"
        return f"({_CMP_CODES[op].format(test)})"

    def member_of(self, args: list[Value]) -> Value:
        needle, candidates = args[0], args[1:]
        _, v, k = self.var(BOOL)
        if needle.kind == NULL:
            return Value(BOOL, v, k)
        found = [
            f"({c.valid} and {self.compare('=', needle, c)})" for c in candidates if c.kind != NULL
        ]
        unknown = [f"(not {c.valid})" if c.kind != NULL else "True" for c in candidates]
        with self.block(f"if {needle.valid}:"):
            self.emit(f"{v} = {' or '.join(found) or 'False'}")
            self.emit(f"{k} = {v} or not ({' or '.join(unknown)})")
        return Value(BOOL, v, k)

    def logic(self, e: Call, scope: Scope) -> Value:
        """`and`/`or`: in order; a deciding operand wins over an earlier operand's error."""
        stop = e.op == "or"
        j = self.m.fresh()
        decided, failed, unknown = f"d{j}", f"f{j}", f"u{j}"
        for name in (decided, failed, unknown):
            self.emit(f"{name} = False")
        decide = partial(self.decide, stop=stop, decided=decided, unknown=unknown)
        for index, arg in enumerate(e.args):
            with self.block(f"if not {decided}:") if index else nullcontext():
                if may_fail(arg):
                    self.guarded(arg, scope, f"{failed} = True", decide)
                else:
                    decide(self.expr(arg, scope))
        v, k = f"v{j}", f"k{j}"
        with self.block(f"if {decided}:"):
            self.emit(f"{v} = {stop}")
            self.emit(f"{k} = True")
        if any(may_fail(a) for a in e.args):
            with self.block(f"elif {failed}:"):
                self.fail(scope)
        with self.block(f"elif {unknown}:"):
            self.emit(f"{v} = False")
            self.emit(f"{k} = False")
        with self.block("else:"):
            self.emit(f"{v} = {not stop}")
            self.emit(f"{k} = True")
        return Value(BOOL, v, k)

    def decide(self, a: Value, stop: bool, decided: str, unknown: str) -> None:
        if a.kind == NULL:
            self.emit(f"{unknown} = True")
            return
        with self.block(f"if not {a.valid}:"):
            self.emit(f"{unknown} = True")
        with self.block(f"elif {'' if stop else 'not '}{_truth(a)}:"):
            self.emit(f"{decided} = True")

    def branch(self, e: Call, kind: str, scope: Scope) -> Value:
        cond = self.expr(e.args[0], scope)
        _, v, k = self.var(kind)
        otherwise = e.args[2] if len(e.args) > 2 else None
        if cond.kind == NULL:
            if otherwise is not None:
                self.assign(v, k, self.expr(otherwise, scope))
            return Value(kind, v, k)
        with self.block(f"if {cond.valid} and {_truth(cond)}:"):
            self.assign(v, k, self.expr(e.args[1], scope))
        if otherwise is not None:
            with self.block("else:"):
                self.assign(v, k, self.expr(otherwise, scope))
        return Value(kind, v, k)

    def coalesce(self, args: list[RExpr], v: str, k: str, scope: Scope) -> None:
        if not args:
            return
        first = self.expr(args[0], scope)
        if first.kind == NULL:
            self.coalesce(args[1:], v, k, scope)
            return
        with self.block(f"if {first.valid}:"):
            self.emit(f"{v} = {first.value}")
            self.emit(f"{k} = True")
        if len(args) > 1:
            with self.block("else:"):
                self.coalesce(args[1:], v, k, scope)
