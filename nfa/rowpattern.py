"""Row pattern programs and the matcher that finds the preferred match at a row.

A pattern compiles (in `cep.sql.compiler`) to a small regex-like program, as Trino does:
LABEL consumes one row if the variable's DEFINE condition holds; SPLIT forks into two
continuations, the first preferred (greedy loops prefer another iteration, reluctant ones
prefer to leave, alternation prefers its left branch); JUMP; anchors; exclusion marks; DONE.
Bounded quantifiers are unrolled and PERMUTE is expanded to an alternation of the
permutations in lexicographic order, so the program order *is* the SQL preference order.

`find_match` runs the program depth-first in that order (backtracking), so the first thread
to reach DONE is the preferred match; empty matches are matches. A thread that comes back to
a SPLIT or JUMP without having consumed a row since its last visit dies: an empty iteration of
a loop is never repeated, which makes patterns such as `()*` or `(A?)*` terminate. When no
DEFINE condition reads earlier mappings (`Program.history_free`), threads in the same state
are merged, so `(A+)+ B` takes polynomial rather than exponential time.

Streaming: a depth-first search needs the rows ahead. The same program can be run
breadth-first (one step per row, threads kept in preference order); a match found there is
final — and emitted — once no thread ahead of it in preference order is still alive, which
happens when a later row kills them or the window closes (`$` and WITH UNMATCHED ROWS are
decided only at the end of bounded input or of a window). `search` runs the same depth-first
search over the rows received so far: a thread that needs a row not yet received (or asks
whether the input ended) before any thread found a match makes the answer `PENDING`, because
its outcome could still change which match is preferred; `nfa.rowpattern_stream` retries then.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from nfa.rowpattern_expr import RExpr


class Op(enum.IntEnum):
    LABEL = 0  # a: label id
    SPLIT = 1  # a: preferred target, b: other target
    JUMP = 2  # a: target
    START = 3  # ^: only at the first row of the partition
    END = 4  # $: only after the last row of the partition
    BEGIN_EXCLUDE = 5
    END_EXCLUDE = 6
    DONE = 7


@dataclass(frozen=True, slots=True)
class Instr:
    op: Op
    a: int = 0
    b: int = 0


@dataclass(frozen=True, slots=True)
class Program:
    """The instructions and, per label id, its name and DEFINE condition (None: true)."""

    code: tuple[Instr, ...]
    names: tuple[str, ...]
    defines: tuple[RExpr | None, ...]
    history_free: bool = False  # no condition reads earlier mappings: merge equal threads


@dataclass(frozen=True, slots=True)
class Match:
    """Rows `start .. start+len(labels)-1` mapped to `labels`; `excluded` rows are not output."""

    start: int
    labels: tuple[int, ...]
    excluded: frozenset[int] = field(default_factory=frozenset)

    @property
    def end(self) -> int:
        """One past the last row (== start for an empty match)."""
        return self.start + len(self.labels)


class NeedMoreRows(Exception):
    """Raised by a condition that reads a row not received yet (NEXT beyond the input)."""


class _Pending(enum.Enum):
    PENDING = "pending"


#: `search`'s answer when rows still to come could change the preferred match.
PENDING = _Pending.PENDING

#: Evaluates label `label`'s condition at row `start + len(labels) - 1`, labels tentative.
Condition = Callable[[int, int, tuple[int, ...]], bool]


@dataclass(frozen=True, slots=True)
class _Thread:
    pc: int
    pos: int
    labels: tuple[int, ...]
    excluded: tuple[int, ...]
    open_excludes: tuple[int, ...]
    visited: frozenset[int]


def find_match(
    program: Program, partition_size: int, start: int, condition: Condition
) -> Match | None:
    """The preferred match starting at row `start`, or None when no match starts there."""
    found = search(program, partition_size, start, condition)
    assert found is not PENDING  # complete input never leaves a thread waiting
    return found


def search(
    program: Program,
    size: int,
    start: int,
    condition: Condition,
    complete: bool = True,
    origin: int = 0,
) -> Match | _Pending | None:
    """The preferred match at row `start` over rows `0 .. size-1`.

    With `complete` False more rows may follow row `size-1`: a thread (tried in preference
    order) that would read row `size`, test `$`, or whose condition raises `NeedMoreRows`
    before a match is found makes the answer `PENDING`. `origin` is the index of the
    partition's first row (for `^`), which differs from 0 once a stream dropped old rows.
    """
    partition_size = size
    code = program.code
    stack = [_Thread(0, start, (), (), (), frozenset())]
    seen: set[tuple[int, int, frozenset[int], tuple[int, ...]]] = set()
    while stack:
        t = stack.pop()
        while True:
            if program.history_free:
                # A thread preferred over this one reached the same state and failed from
                # there (it would have returned otherwise); this one would fail too.
                state = (t.pc, t.pos, t.visited, t.open_excludes)
                if state in seen:
                    break
                seen.add(state)
            ins = code[t.pc]
            op = ins.op
            if op is Op.LABEL:
                labels = (*t.labels, ins.a)
                if t.pos >= partition_size:
                    if not complete:
                        return PENDING
                    break
                try:
                    if not condition(ins.a, start, labels):
                        break
                except NeedMoreRows:
                    return PENDING
                t = _Thread(t.pc + 1, t.pos + 1, labels, t.excluded, t.open_excludes, frozenset())
            elif op is Op.SPLIT or op is Op.JUMP:
                if t.pc in t.visited:
                    break  # an empty iteration: do not loop again
                visited = t.visited | {t.pc}
                if op is Op.SPLIT:
                    stack.append(
                        _Thread(ins.b, t.pos, t.labels, t.excluded, t.open_excludes, visited)
                    )
                t = _Thread(ins.a, t.pos, t.labels, t.excluded, t.open_excludes, visited)
            elif op is Op.START or op is Op.END:
                if op is Op.END and t.pos == partition_size and not complete:
                    return PENDING
                if t.pos != (origin if op is Op.START else partition_size):
                    break
                t = _Thread(t.pc + 1, t.pos, t.labels, t.excluded, t.open_excludes, t.visited)
            elif op is Op.BEGIN_EXCLUDE:
                opened = (*t.open_excludes, t.pos)
                t = _Thread(t.pc + 1, t.pos, t.labels, t.excluded, opened, t.visited)
            elif op is Op.END_EXCLUDE:
                excluded = (*t.excluded, *range(t.open_excludes[-1], t.pos))
                opened = t.open_excludes[:-1]
                t = _Thread(t.pc + 1, t.pos, t.labels, excluded, opened, t.visited)
            else:
                return Match(start, t.labels, frozenset(t.excluded))
    return None


def rows_of(match: Match, labels: Sequence[int] | frozenset[int]) -> list[int]:
    """The rows of `match` mapped to any of `labels`."""
    return [match.start + i for i, label in enumerate(match.labels) if label in labels]
