"""Prove that two DEFINE conditions never hold on the same row.

A SQL rule runs on the NFA engine only if the parse of every row sequence is unique
(`cep.sql.nfa_subset`), which needs: the condition of a variable-length pattern variable
and the condition of every variable that can directly follow it are disjoint. This module
decides that conservatively, from the conditions' *current-row* constraints alone.

A condition is over-approximated by a disjunction of conjunctions of per-column domains,
read from `column op constant` comparisons (`=`, `<>`, `<`, `<=`, `>`, `>=`), `BETWEEN`
and `IN` with constants, `IS [NOT] NULL`, and a boolean column (or its `NOT`). Any other
conjunct (navigation, arithmetic, another variable's rows) is dropped, which only widens
the set of rows the approximation admits; an OR with such a branch admits every row. Two
conditions are disjoint when every pair of their conjunctions has a column whose domains
cannot meet. SQL's three-valued logic helps: a comparison holds on no null, so `x IS NULL`
is disjoint from `x > 5`. A NaN satisfies only `<>`, which never makes a domain empty.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

from cep.sql import ast

_MAX_DISJUNCTS = 32
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "<>": "<>"}


@dataclass(frozen=True, slots=True)
class Domain:
    """The values one column may take under a conjunction of constraints."""

    low: float = -math.inf
    low_open: bool = False
    high: float = math.inf
    high_open: bool = False
    values: frozenset[object] | None = None  # only these (from `=` and IN); None: any
    excluded: frozenset[object] = frozenset()  # not these (from `<>`)
    null: bool | None = None  # True: must be null; False: must not be; None: either

    def meet(self, other: Domain) -> Domain | None:
        """Both domains at once; None when they contradict on nullness."""
        if None not in (self.null, other.null) and self.null != other.null:
            return None
        # The tighter bound wins; at equal bounds the open one is tighter.
        low, low_open = max((self.low, self.low_open), (other.low, other.low_open))
        high, closed = min((self.high, not self.high_open), (other.high, not other.high_open))
        if self.values is None or other.values is None:
            values = self.values if other.values is None else other.values
        else:
            values = self.values & other.values
        return Domain(
            low,
            low_open,
            high,
            not closed,
            values,
            self.excluded | other.excluded,
            self.null if self.null is not None else other.null,
        )

    def empty(self) -> bool:
        """Whether no value (null included) satisfies the domain."""
        if self.null is True:
            return self.values is not None or self._bounded()
        if self.low > self.high or (self.low == self.high and (self.low_open or self.high_open)):
            return True
        if self.low == self.high and self.low in self.excluded:
            return True
        if self.values is None:
            return False
        return not any(self._admits(v) for v in self.values)

    def _bounded(self) -> bool:
        return self.low != -math.inf or self.high != math.inf

    def _admits(self, value: object) -> bool:
        if value in self.excluded:
            return False
        if not _number(value):
            return True  # a string or a boolean: numeric bounds say nothing about it
        v = float(value)  # type: ignore[arg-type]
        above = v > self.low or (v == self.low and not self.low_open)
        below = v < self.high or (v == self.high and not self.high_open)
        return above and below


Conjunction = dict[int, Domain]
_ANY: list[Conjunction] = [{}]


def approximate(condition: ast.Expr | None, own: str, columns: dict[str, int]) -> list[Conjunction]:
    """A disjunction of conjunctions admitting every row on which `condition` holds.

    `own` is the variable the condition defines (`own.x` is the current row's column);
    `columns` maps column names to their indices. An absent condition (an undefined
    variable) holds on every row.
    """
    if condition is None:
        return _ANY
    return _dnf(condition, own, columns)


def disjoint(a: list[Conjunction], b: list[Conjunction]) -> bool:
    """Whether no row satisfies both approximations."""
    return all(_contradict(x, y) for x, y in itertools.product(a, b))


def _contradict(x: Conjunction, y: Conjunction) -> bool:
    for column in x.keys() | y.keys():
        met = x.get(column, Domain()).meet(y.get(column, Domain()))
        if met is None or met.empty():
            return True
    return False


def _dnf(e: ast.Expr, own: str, columns: dict[str, int]) -> list[Conjunction]:
    if isinstance(e, ast.Binary) and e.op == "and":
        left, right = _dnf(e.left, own, columns), _dnf(e.right, own, columns)
        out: list[Conjunction] = []
        for x, y in itertools.product(left, right):
            both = _conjoin(x, y)
            if both is not None:
                out.append(both)
        return out if len(out) <= _MAX_DISJUNCTS else _ANY
    if isinstance(e, ast.Binary) and e.op == "or":
        left, right = _dnf(e.left, own, columns), _dnf(e.right, own, columns)
        if {} in left or {} in right or len(left) + len(right) > _MAX_DISJUNCTS:
            return _ANY
        return left + right
    found = _atom(e, own, columns)
    return _ANY if found is None else [{found[0]: found[1]}]


def _conjoin(x: Conjunction, y: Conjunction) -> Conjunction | None:
    """Both conjunctions; None when they contradict (the disjunct admits no row)."""
    out = dict(x)
    for column, domain in y.items():
        met = out[column].meet(domain) if column in out else domain
        if met is None or met.empty():
            return None
        out[column] = met
    return out


def _atom(e: ast.Expr, own: str, columns: dict[str, int]) -> tuple[int, Domain] | None:
    """The column and domain of one current-row constraint; None if `e` is not one."""
    if isinstance(e, ast.Binary) and e.op in _FLIP:
        column, value, op = _column(e.left, own, columns), _constant(e.right), e.op
        if column is None:
            column, value, op = _column(e.right, own, columns), _constant(e.left), _FLIP[e.op]
        if column is None or value is _NOT_CONSTANT or value is None:
            return None
        return _compare(column, op, value)
    if isinstance(e, ast.Between) and not e.negated:
        column = _column(e.arg, own, columns)
        low, high = _constant(e.low), _constant(e.high)
        if column is None or not (_number(low) and _number(high)):
            return None
        return column, Domain(float(low), False, float(high), False, null=False)  # type: ignore[arg-type]
    if isinstance(e, ast.InList) and not e.negated:
        column = _column(e.arg, own, columns)
        items = [_constant(i) for i in e.items]
        if column is None or any(i is _NOT_CONSTANT or i is None for i in items):
            return None
        return column, Domain(values=frozenset(items), null=False)
    if isinstance(e, ast.IsNull):
        column = _column(e.arg, own, columns)
        return None if column is None else (column, Domain(null=not e.negated))
    if isinstance(e, ast.Unary) and e.op == "not":
        column = _column(e.arg, own, columns)  # NOT flag: flag is false (not null)
        return None if column is None else (column, Domain(values=frozenset({False}), null=False))
    column = _column(e, own, columns)  # a boolean column alone: it is true
    return None if column is None else (column, Domain(values=frozenset({True}), null=False))


def _compare(column: int, op: str, value: object) -> tuple[int, Domain] | None:
    domain = Domain(null=False)
    if op == "=":
        return column, replace(domain, values=frozenset({value}))
    if op == "<>":
        return column, replace(domain, excluded=frozenset({value}))
    if not _number(value):
        return None  # ordering of strings and booleans is not analysed
    v = float(value)  # type: ignore[arg-type]
    if op in ("<", "<="):
        return column, replace(domain, high=v, high_open=op == "<")
    return column, replace(domain, low=v, low_open=op == ">")


def _column(e: ast.Expr, own: str, columns: dict[str, int]) -> int | None:
    """The column index of a current-row reference (`x` or `own.x`), else None."""
    if isinstance(e, ast.ColumnRef) and e.label in (None, own):
        return columns.get(e.name)
    return None


_NOT_CONSTANT = object()


def _constant(e: ast.Expr) -> object:
    """The value of a literal (negated numbers too), or `_NOT_CONSTANT`."""
    if isinstance(e, ast.Literal):
        return e.value
    if (
        isinstance(e, ast.Unary)
        and e.op == "-"
        and isinstance(e.arg, ast.Literal)
        and _number(e.arg.value)
    ):
        return -e.arg.value  # type: ignore[operator]
    return _NOT_CONSTANT


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
