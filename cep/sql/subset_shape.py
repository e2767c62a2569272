"""The pattern conditions of the NFA subset: which patterns, and how each element maps.

`shape` reads a MATCH_RECOGNIZE pattern as a concatenation of elements -- a variable with
its quantifier, or an alternation `(B | C)` of single variables taking one row -- and
decides the conditions of `cep.sql.nfa_subset` that are about the pattern (2, 3, 5 and 6
of its docstring, which also holds the proof): the elements, the unique parse, which
reluctant loops are gaps (ended, as by the DSL's `until`, at the first row of the element
after them) and which greedy loop before a gap is its lead. A pattern outside them raises
`Refused` with the reason, which `cep check`'s note gives.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass

from cep.errors import Span
from cep.sql import ast
from cep.sql.disjoint import Conjunction, approximate, disjoint


class Refused(Exception):
    """The rule is outside the subset; `reason` says which condition failed."""

    def __init__(self, span: Span, reason: str):
        super().__init__(reason)
        self.span = span
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Element:
    """One item of the concatenation: a variable with its quantifier, or an alternation of
    variables (`names` in preference order) taking one row.

    `gap` marks a reluctant loop that ends at the first row the next element can take;
    `lead` a greedy loop before the first gap that may take the same rows as the gap.
    """

    names: tuple[str, ...]
    low: int
    high: int | None
    span: Span
    greedy: bool = True
    gap: bool = False
    lead: bool = False

    @property
    def variable_count(self) -> bool:
        return self.high is None or self.low < self.high

    @property
    def alternation(self) -> bool:
        return len(self.names) > 1

    @property
    def label(self) -> str:
        return self.names[0] if len(self.names) == 1 else "(" + " | ".join(self.names) + ")"


_Union = Callable[[Element], list[Conjunction]]


def shape(
    mr: ast.MatchRecognize, defines: dict[str, ast.Expr], columns: dict[str, int]
) -> tuple[Element, ...]:
    """The pattern's elements (gaps and leads marked), or `Refused`."""
    elements = _elements(mr.pattern)
    last = elements[-1]
    if not last.greedy and last.low > 0 and not last.alternation:
        # Reluctant, the last variable ends the match as soon as it has its `low` rows.
        elements[-1] = last = dataclasses.replace(last, high=last.low)
    if last.variable_count:
        raise Refused(last.span, f"the last variable {last.label} has no fixed count")
    shapes = {
        name: approximate(defines.get(name), name, columns) for e in elements for name in e.names
    }

    def union(e: Element) -> list[Conjunction]:
        return [c for name in e.names for c in shapes[name]]

    for e in elements:
        for a, b in itertools.combinations(e.names, 2):
            if not disjoint(shapes[a], shapes[b]):
                reason = f"a row may satisfy both {a} and {b} of an alternation"
                raise Refused(e.span, f"{reason}, so the parse is not provably unique")
    elements = [_mark_gap(elements, i, union) for i in range(len(elements))]
    _mark_lead(elements, union)
    _check_unique_parse(elements, union)
    _check_gaps(elements, defines)
    absent = approximate(defines.get(mr.absent or ""), mr.absent or "", columns)
    if mr.absent is not None and last.low > 1 and not disjoint(union(last), absent):
        raise Refused(
            last.span,
            f"a row may satisfy both {last.label} (counted {last.low} times) and the absent "
            f"{mr.absent}: FlinkCEP's absence also stops at such a row between the "
            f"{last.label} rows, SQL's only after them",
        )
    return tuple(elements)


def _elements(pattern: ast.Pattern) -> list[Element]:
    out: list[Element] = []
    seen: set[str] = set()
    for item in _flat(pattern):
        low: int = 1
        high: int | None = 1
        greedy = True
        body: ast.Pattern = item
        if isinstance(item, ast.Quantified):
            low, high, greedy, body = item.low, item.high, item.greedy, item.body
        if isinstance(body, ast.Alternation) and body is not item:
            raise Refused(body.span, "the pattern has a quantified alternation")
        if isinstance(body, ast.Alternation) and all(isinstance(b, ast.Label) for b in body.items):
            names = tuple(b.name for b in body.items if isinstance(b, ast.Label))
        elif isinstance(body, ast.Label):
            names = (body.name,)
        else:
            what = {
                ast.Alternation: "an alternation of more than single variables",
                ast.Permute: "PERMUTE",
                ast.Exclusion: "exclusion {- -}",
                ast.Anchor: "an anchor (^ or $)",
                ast.Empty: "an empty pattern ()",
            }.get(type(body), "a quantified group")
            raise Refused(body.span, f"the pattern has {what}")
        if high == 0:
            raise Refused(item.span, f"{names[0]} is quantified to no rows")
        for name in names:
            if name in seen:
                raise Refused(item.span, f"the variable {name} appears twice in the pattern")
            seen.add(name)
        out.append(Element(names, low, high, item.span, greedy))
    return out


def _flat(pattern: ast.Pattern) -> list[ast.Pattern]:
    """The items of a concatenation, nested unquantified concatenations `A (B C)` opened."""
    if not isinstance(pattern, ast.Concat):
        return [pattern]
    return [leaf for item in pattern.items for leaf in _flat(item)]


def _gap_shaped(elements: list[Element], i: int) -> bool:
    """Whether element i is a loop `X*`, `X{0,m}` (m > 1) of one variable, after another
    element and before one that takes exactly one row."""
    e = elements[i]
    return (
        0 < i < len(elements) - 1
        and not e.alternation
        and e.low == 0
        and (e.high is None or e.high > 1)
        and elements[i + 1].low == elements[i + 1].high == 1
    )


def _mark_gap(elements: list[Element], i: int, union: _Union) -> Element:
    """Element i marked as a gap when it is one: gap-shaped and reluctant (`X*?`), with a
    condition that may hold on a row the next element takes (else the parse is unique
    anyway and it stays an ordinary loop)."""
    e = elements[i]
    if _gap_shaped(elements, i) and not e.greedy and not disjoint(union(e), union(elements[i + 1])):
        return dataclasses.replace(e, gap=True)
    return e


def _mark_lead(elements: list[Element], union: _Union) -> None:
    """Mark the element before the first gap as its lead when it is a greedy, unbounded loop
    of one variable whose condition may hold on a row the gap takes."""
    gap = next((i for i, e in enumerate(elements) if e.gap), None)
    if gap is None:
        return
    e = elements[gap - 1]
    if (
        e.greedy
        and e.high is None
        and not e.alternation
        and not disjoint(union(e), union(elements[gap]))
    ):
        elements[gap - 1] = dataclasses.replace(e, lead=True)


def _check_unique_parse(elements: list[Element], union: _Union) -> None:
    """Refuse unless every element that can take the row after a row of a variable-count
    element (not a gap) has a condition disjoint from it; a lead's gap may overlap it."""
    for i, e in enumerate(elements):
        if not e.variable_count or e.gap:
            continue
        for j, follower in enumerate(elements[i + 1 :], i + 1):
            if e.lead and follower.gap:
                continue
            if not disjoint(union(e), union(follower)):
                hint = ""
                if e.greedy and j == i + 1 and _gap_shaped(elements, i):
                    hint = f" (reluctant, {e.label} would end at the first {follower.label} row)"
                raise Refused(
                    e.span,
                    f"a row may satisfy both {e.label} (a variable count) and {follower.label}, "
                    f"which can follow it, so the parse is not provably unique{hint}",
                )
            if follower.low > 0:
                break


def _check_gaps(elements: list[Element], defines: dict[str, ast.Expr]) -> None:
    """Refuse gaps where SQL could backtrack into a gap to try a later row for its target:
    after a target that is not last come only further gaps and targets, and those later
    gaps are unbounded and accept every row, and those later targets read no rows of the
    first gap or of anything after it (so a later first target cannot help them). With a
    lead, the first gap and its target read no rows of the lead or the gap, and the later
    targets none of the lead (so a shorter lead, which SQL tries too, cannot help them)."""
    gaps = [i for i, e in enumerate(elements) if e.gap]
    if not gaps:
        return
    first = gaps[0]
    lead = elements[first - 1]
    if lead.lead:
        looped = {lead.names[0], elements[first].names[0]}
        for name in (*elements[first].names, *elements[first + 1].names):
            read = reads(defines[name], name) & looped if name in defines else set()
            if read:
                raise Refused(
                    elements[first].span if name in looped else elements[first + 1].span,
                    f"DEFINE {name} reads rows of {min(read)}, so SQL could end the greedy "
                    f"{lead.label} earlier (leaving the reluctant {elements[first].label} more "
                    "rows) to satisfy it",
                )
    for g in gaps:
        if g + 2 < len(elements) and not elements[g + 2].gap:
            gap, target, after = elements[g], elements[g + 1].label, elements[g + 2].label
            raise Refused(
                gap.span,
                f"the reluctant {gap.label} ends at the first row of {target}, but {after} "
                f"follows that row and may fail where a later {target} row would not, which "
                "SQL then tries",
            )
    later = {name for e in elements[first:] for name in e.names}
    if lead.lead:  # a shorter run of the lead, which SQL tries too, changes its rows
        later.add(lead.names[0])
    for g in gaps[1:]:
        gap, follower = elements[g], elements[g + 1]
        condition = defines.get(gap.names[0])
        true = condition is None or (isinstance(condition, ast.Literal) and condition.value is True)
        if not true or gap.high is not None:
            raise Refused(
                gap.span,
                f"the reluctant {gap.label} after another gap is not an unbounded loop that "
                f"accepts every row, so a later row for the first gap's target could help it",
            )
        for name in follower.names:
            read = reads(defines[name], name) - {name} if name in defines else set()
            if read & later:
                raise Refused(
                    follower.span,
                    f"DEFINE {name} reads rows of {min(read & later)}, so SQL could try a "
                    "later row for an earlier gap's target to satisfy it",
                )


def reads(e: ast.Expr, own: str) -> set[str]:
    """The pattern variables whose rows the DEFINE of `own` reads: `A.x`, `count(A.*)`; for
    `own` only `count(own.*)` (`own.x` is the current row)."""
    out: set[str] = set()
    stack: list[object] = [e]
    while stack:
        node = stack.pop()
        if isinstance(node, tuple):
            stack.extend(node)
            continue
        if not dataclasses.is_dataclass(node) or isinstance(node, Span):
            continue
        if isinstance(node, ast.ColumnRef) and node.label not in (None, own):
            out.add(node.label)
        if isinstance(node, ast.Call) and node.star_label is not None:
            out.add(node.star_label)
        stack.extend(getattr(node, f.name) for f in dataclasses.fields(node))
    return out
