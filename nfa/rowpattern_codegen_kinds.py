"""What the generated row-pattern kernel accepts, and the kind of each expression's values.

`nfa.rowpattern_codegen` emits Numba code in which every value is a typed variable, so
before a node is emitted its *kind* must be known: the Python type of the values
`nfa.rowpattern_expr.evaluate` would produce for it (bool, int, float, str, or null for a
NULL literal or a strict operator over one), which the declared `RType` alone does not
say (`x + NULL` is null, a BIGINT column compared with a DOUBLE one is exact). `infer`
computes it one node at a time from the kinds of the children and raises `Unsupported`
for whatever the kernel does not handle, so the same walk is both type inference and the
refusal check that keeps a rule on the Python engine. `may_fail` and `nonzero` say where a
run-time error (division or modulo by zero) can occur, which decides the code's shape.

Kept apart from the emitter because none of this produces source: it is the contract the
emitter relies on (every node it meets has passed `infer`).
"""

from __future__ import annotations

from collections.abc import Callable

from nfa.rowpattern_expr import Agg, Call, Classifier, Col, Const, MatchNumber, Nav, RExpr, RType


class Unsupported(Exception):
    """An expression the generated kernel does not handle (the rule stays on the Python row-pattern engine)."""


# Kinds: the Python type of a node's non-null values.
BOOL, INT, FLOAT, STR, NULL = "bool", "int", "float", "str", "null"
#: The kind of a column (and of a measure) of each declared type.
COLUMN_KINDS = {RType.BOOLEAN: BOOL, RType.BIGINT: INT, RType.DOUBLE: FLOAT, RType.VARCHAR: STR}
NUMERIC = (INT, FLOAT)
INT64 = (-(2**63), 2**63 - 1)
#: The comparison calls and the Python operator each one is.
COMPARE = {"=": "==", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
#: The cast calls and the kind each one produces.
CASTS = {"cast_integer": INT, "cast_bigint": INT, "cast_double": FLOAT, "cast_boolean": BOOL}
_ARITHMETIC = ("+", "-", "*", "/", "%")


def infer(e: RExpr, kind: Callable[[RExpr], str]) -> str:
    """The kind of `e`'s values, given `kind` of its children; raises Unsupported outside
    the supported set."""
    if e.type in (RType.ARRAY, RType.UNKNOWN):
        raise Unsupported(f"{e.type.value} values")
    if isinstance(e, Const):
        return _const_kind(e.value)
    if isinstance(e, Col):
        if e.type not in COLUMN_KINDS or not isinstance(e.index, int) or e.index < 0:
            raise Unsupported(f"a column of type {e.type.value}")
        return COLUMN_KINDS[e.type]
    if isinstance(e, Classifier):
        return STR
    if isinstance(e, MatchNumber):
        return INT
    if isinstance(e, Nav):
        for offset in (e.logical_offset, e.physical_offset):
            if not INT64[0] <= 2 * offset <= INT64[1]:
                raise Unsupported("a navigation offset beyond int64")
        if e.logical_offset < 0:
            raise Unsupported("a negative logical offset")
        return kind(e.expr)
    if isinstance(e, Agg):
        return _infer_agg(e, [kind(a) for a in e.args])
    if isinstance(e, Call):
        return _infer_call(e.op, [kind(a) for a in e.args])
    raise Unsupported(f"expression {type(e).__name__}")


def check_measure(e: RExpr, kind: str) -> None:
    """Refuses a measure whose values would not have the type the caller decodes."""
    expected = COLUMN_KINDS.get(e.type)
    if expected is None or kind not in (expected, NULL):
        raise Unsupported(f"a measure of type {e.type.value} with {kind} values")


def _const_kind(value: object) -> str:
    if value is None:
        return NULL
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        if not INT64[0] <= value <= INT64[1]:
            raise Unsupported("an integer constant beyond int64")
        return INT
    if isinstance(value, float):
        return FLOAT
    if isinstance(value, str):
        return STR
    raise Unsupported(f"a constant of type {type(value).__name__}")


def _infer_agg(e: Agg, kinds: list[str]) -> str:
    func = e.func
    if func == "count":
        if len(kinds) > 1:
            raise Unsupported("count with several arguments")
        return INT
    if len(kinds) != 1:
        raise Unsupported(f"{func} with {len(kinds)} arguments")
    (k,) = kinds
    if func in ("sum", "min", "max") and k in (*NUMERIC, NULL):
        return k
    if func == "avg" and k in (*NUMERIC, NULL):
        return FLOAT if k in NUMERIC else NULL
    if func in ("bool_and", "bool_or") and k != STR:
        return BOOL
    if func == "arbitrary":
        return k
    raise Unsupported(f"aggregate {func} over {k} values")


def _infer_call(op: str, kinds: list[str]) -> str:
    strict_null = NULL in kinds  # a strict operator never applies to a NULL argument
    if op in ("and", "or"):
        _truthy(kinds)
        return BOOL
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
        return BOOL
    if op == "in" and len(kinds) >= 2:
        for k in kinds[1:]:
            if NULL not in (kinds[0], k):
                _comparable(kinds[0], k, "=")
        return BOOL
    if op in COMPARE and len(kinds) == 2:
        if not strict_null:
            _comparable(kinds[0], kinds[1], op)
        return BOOL
    if op == "between" and len(kinds) == 3:
        if not strict_null:
            _comparable(kinds[1], kinds[0], "<=")
            _comparable(kinds[0], kinds[2], "<=")
        return BOOL
    if op == "not" and len(kinds) == 1:
        _truthy(kinds)
        return BOOL
    if op in CASTS and len(kinds) == 1:
        target = CASTS[op]
        if kinds[0] == STR or (kinds[0] == FLOAT and target == INT):
            raise Unsupported(f"{op} from {kinds[0]}")
        return target
    if (op in _ARITHMETIC and len(kinds) == 2) or (op in ("neg", "abs") and len(kinds) == 1):
        if strict_null:
            return NULL
        if any(k not in NUMERIC for k in kinds):
            raise Unsupported(f"{op} over {', '.join(kinds)}")
        return FLOAT if FLOAT in kinds else INT
    raise Unsupported(f"call {op} over {', '.join(kinds)}")


def _truthy(kinds: list[str]) -> None:
    if STR in kinds:
        raise Unsupported("the truth value of a string")


def _unify(kinds: list[str]) -> str:
    known = {k for k in kinds if k != NULL}
    if len(known) > 1:
        raise Unsupported(f"branches of different types ({', '.join(sorted(known))})")
    return known.pop() if known else NULL


def _comparable(a: str, b: str, op: str) -> None:
    if a == b and (a != STR or op in ("=", "<>")):
        return
    if a in NUMERIC and b in NUMERIC:
        return
    raise Unsupported(f"{op} between {a} and {b}")


def may_fail(e: RExpr) -> bool:
    """Whether evaluating `e` can raise RowPatternError (division or modulo by zero)."""
    if isinstance(e, Call):
        if e.op in ("/", "%") and not nonzero(e.args[-1]):
            return True
        return any(may_fail(a) for a in e.args)
    if isinstance(e, Agg):
        return any(may_fail(a) for a in e.args)
    if isinstance(e, Nav):
        return may_fail(e.expr)
    return False


def nonzero(e: RExpr) -> bool:
    """Whether `e` is a numeric constant other than zero (a divisor that cannot fail)."""
    value = e.value if isinstance(e, Const) else None
    return isinstance(value, int | float) and not isinstance(value, bool) and value != 0
