"""Run a row pattern query over one partition of bounded input: matches, skips and output.

`RowPatternQuery` is everything `nfa` needs beyond the program: the MEASURES, the rows per
match mode and the AFTER MATCH SKIP target. `run_partition` tries a match at each row (in
ORDER BY order), emits output rows for it and moves on as the skip mode says; where no match
starts, the row is unmatched. Output rows say which input row they come from and carry the
measure values; the SQL layer lays the final columns out.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from nfa.rowpattern import Condition, Match, Program, find_match, rows_of
from nfa.rowpattern_expr import Frame, RExpr, RowPatternError, Value, evaluate


class RowsPerMatch(enum.Enum):
    ONE = "one"
    ALL_SHOW_EMPTY = "all_show_empty"
    ALL_OMIT_EMPTY = "all_omit_empty"
    ALL_WITH_UNMATCHED = "all_with_unmatched"


class Skip(enum.Enum):
    PAST_LAST_ROW = "past_last_row"
    TO_NEXT_ROW = "to_next_row"
    TO_FIRST = "to_first"
    TO_LAST = "to_last"


@dataclass(frozen=True, slots=True)
class RowPatternQuery:
    program: Program
    measures: tuple[RExpr, ...]
    rows_per_match: RowsPerMatch
    skip: Skip
    skip_labels: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class OutputRow:
    """An output row: the input row it belongs to, and measure values (None: unmatched)."""

    row: int
    measures: tuple[Value, ...] | None
    match_number: int | None


def run_partition(query: RowPatternQuery, rows: Sequence[Sequence[Value]]) -> Iterator[OutputRow]:
    """Every output row of one partition, in order; rows are already sorted."""
    program = query.program
    size = len(rows)
    pos, last_matched, number = 0, -1, 1
    while pos < size:
        match = find_match(program, size, pos, _condition(program, rows, number))
        if match is None:
            if query.rows_per_match is RowsPerMatch.ALL_WITH_UNMATCHED and pos > last_matched:
                yield OutputRow(pos, None, None)
            pos += 1
            continue
        yield from _emit(query, rows, match, number)
        number += 1
        last_matched = max(last_matched, match.end - 1)
        pos = next_position(query, match)


def _condition(program: Program, rows: Sequence[Sequence[Value]], number: int) -> Condition:
    names, defines = program.names, program.defines

    def holds(label: int, start: int, labels: tuple[int, ...]) -> bool:
        condition = defines[label]
        if condition is None:
            return True
        current = start + len(labels) - 1
        frame = Frame(rows, start, labels, current, number, names)
        return evaluate(condition, frame, current) is True

    return holds


def _emit(
    query: RowPatternQuery, rows: Sequence[Sequence[Value]], match: Match, number: int
) -> Iterator[OutputRow]:
    names = query.program.names

    def measures(current: int) -> tuple[Value, ...]:
        frame = Frame(rows, match.start, match.labels, current, number, names)
        return tuple(evaluate(m, frame, current) for m in query.measures)

    if query.rows_per_match is RowsPerMatch.ONE:
        yield OutputRow(match.start, measures(match.end - 1), number)
        return
    if not match.labels:
        if query.rows_per_match is not RowsPerMatch.ALL_OMIT_EMPTY:
            yield OutputRow(match.start, measures(match.start - 1), number)
        return
    for row in range(match.start, match.end):
        if row not in match.excluded:
            yield OutputRow(row, measures(row), number)


def next_position(query: RowPatternQuery, match: Match) -> int:
    """The row where the next match is tried after `match` (AFTER MATCH SKIP)."""
    if query.skip is Skip.TO_NEXT_ROW or (query.skip is Skip.PAST_LAST_ROW and not match.labels):
        return match.start + 1
    if query.skip is Skip.PAST_LAST_ROW:
        return match.end
    targets = rows_of(match, query.skip_labels)
    if not targets:
        raise RowPatternError("AFTER MATCH SKIP failed: pattern variable is not present in match")
    target = targets[0] if query.skip is Skip.TO_FIRST else targets[-1]
    if target == match.start:
        raise RowPatternError("AFTER MATCH SKIP failed: cannot skip to first row of match")
    return target
