"""Incremental row pattern matching of one SQL rule for one key (one PARTITION BY value).

`KeyRows` holds the key's rows from the earliest row that can still start a match (plus the
few rows before it that PREV may read). `decide` re-runs the preference-order search of
`nfa.rowpattern.search` at that candidate row over the rows received so far and emits the
match only once no row still to come can change it: the search found the preferred match
before any preferred thread needed a row not yet received, or the window (WITHIN) closed,
or the input ended. Then AFTER MATCH SKIP picks the next candidate, as on bounded input, so
the matches are exactly those of the bounded matcher over the same rows.

Window: with WITHIN a match holds rows whose time is less than `first row time + W`; the
window is closed once a row at or after that time arrived, or the watermark reached it.
`$` holds at the end of bounded input or of the window. Absence (`NOT FOLLOWED BY C`): the
preferred match counts only if no row satisfying C follows it inside its window; it is
decided when the window closes (time `first row time + W`), or dropped at the first C row
(then the candidate row is treated as unmatched).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import overload

from nfa.rowpattern import PENDING, Condition, Match, NeedMoreRows, Program, search
from nfa.rowpattern_expr import Frame, RowPatternError, Value, evaluate
from nfa.rowpattern_rule import SqlProgram
from nfa.rowpattern_run import RowsPerMatch, next_position

Row = tuple[Value, ...]


@dataclass
class KeyRows:
    """The retained rows of one (rule, key), in (time, arrival) order."""

    rows: list[Row] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    times: list[int] = field(default_factory=list)
    base: int = 0  # partition index of rows[0] (rows before it were dropped)
    pos: int = 0  # index into rows of the next candidate start row
    number: int = 1  # the next MATCH_NUMBER()

    def append(self, row: Row, seq: int, ts: int) -> None:
        self.rows.append(row)
        self.seqs.append(seq)
        self.times.append(ts)

    def trim(self, keep_before: int) -> None:
        """Drop rows no match can reach any more: all but `keep_before` before `pos`."""
        cut = max(0, self.pos - keep_before)
        if cut:
            del self.rows[:cut], self.seqs[:cut], self.times[:cut]
            self.base += cut
            self.pos -= cut


@dataclass(frozen=True, slots=True)
class Decided:
    """A match decided for good: `match` indexes the rows it was decided over."""

    match: Match
    measures: tuple[Value, ...]
    time: int
    key_value: Value
    events: tuple[tuple[int, int, int], ...]  # (label, seq, ts) per match row
    #: ALL ROWS PER MATCH: the output row's input values; `measures` are RUNNING there and
    #: `events` the match up to that row (which makes each output row's alert id its own)
    row: Row | None = None


class _Received(Sequence[Row]):
    """The rows so far of an unbounded input: reading past them raises `NeedMoreRows`."""

    def __init__(self, rows: list[Row]):
        self._rows = rows

    def __len__(self) -> int:
        return 2**62  # unknown: navigation may not assume a row is missing

    @overload
    def __getitem__(self, index: int) -> Row: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Row]: ...
    def __getitem__(self, index: int | slice) -> Row | Sequence[Row]:
        if isinstance(index, slice):
            raise TypeError("no slices")
        if index >= len(self._rows):
            raise NeedMoreRows
        return self._rows[index]


def decide(
    sp: SqlProgram, state: KeyRows, now: int, ended: bool, empty: bool = False
) -> list[Decided]:
    """Every match of `state` that rows still to come cannot change, in order.

    `now` is the event time reached (the watermark), `ended` the end of bounded input;
    `empty` keeps empty matches (an alert needs events, the equivalence tests need all).
    """
    query, program = sp.query, sp.query.program
    rows, times = state.rows, state.times
    view: Sequence[Row] = rows if ended else _Received(rows)
    out: list[Decided] = []
    while state.pos < len(rows):
        pos = state.pos
        size, closed, limit = len(rows), ended, 0
        if sp.within_ms is not None:
            limit = times[pos] + sp.within_ms
            size = bisect_left(times, limit, lo=pos)
            closed = ended or size < len(rows) or now >= limit
        condition = _condition(program, view, state.number, program.names)
        found = search(program, size, pos, condition, closed, -state.base)
        if found is PENDING:
            break
        if found is None:
            state.pos += 1
            continue
        time = times[found.end - 1] if found.labels else times[pos]
        if sp.absent is not None:
            verdict = _absent(sp, state, found, view, limit, now, ended)
            if verdict is None:
                break
            if not verdict:
                state.pos += 1
                continue
            time = limit
        try:
            measures = _measures(sp, view, found, state.number)
        except NeedMoreRows:
            break
        if found.labels or empty:
            events = tuple(
                (label, state.seqs[found.start + i], times[found.start + i])
                for i, label in enumerate(found.labels)
            )
            key_value = rows[pos][sp.key_column]
            if sp.query.rows_per_match is RowsPerMatch.ONE or not found.labels:
                out.append(Decided(found, measures, time, key_value, events))
            else:
                try:
                    per_row = _all_rows(sp, view, found, state.number, time, key_value, events)
                except NeedMoreRows:
                    break
                out += per_row
        state.number += 1
        try:
            state.pos = next_position(query, found)
        except RowPatternError:
            state.pos = pos + 1  # a failed AFTER MATCH SKIP TO: go on at the next row
    state.trim(sp.lookback)
    return out


def _condition(
    program: Program, rows: Sequence[Row], number: int, names: Sequence[str]
) -> Condition:
    defines = program.defines

    def holds(label: int, start: int, labels: tuple[int, ...]) -> bool:
        condition = defines[label]
        if condition is None:
            return True
        current = start + len(labels) - 1
        frame = Frame(rows, start, labels, current, number, names)
        try:
            return evaluate(condition, frame, current) is True
        except RowPatternError:
            return False  # a run-time error (division by zero) makes the condition false

    return holds


def _measures(sp: SqlProgram, rows: Sequence[Row], match: Match, number: int) -> tuple[Value, ...]:
    names = sp.query.program.names
    frame = Frame(rows, match.start, match.labels, match.end - 1, number, names)
    values: list[Value] = []
    for measure in sp.query.measures:
        try:
            values.append(evaluate(measure, frame, match.end - 1))
        except RowPatternError:
            values.append(None)  # a run-time error makes the measure null
    return tuple(values)


def _all_rows(
    sp: SqlProgram,
    rows: Sequence[Row],
    match: Match,
    number: int,
    time: int,
    key_value: Value,
    events: tuple[tuple[int, int, int], ...],
) -> list[Decided]:
    """ALL ROWS PER MATCH: an output per row of the match (rows of `{- -}` excluded), with
    the measures RUNNING at that row, as `nfa.rowpattern_run` lays out bounded output."""
    names = sp.query.program.names
    out: list[Decided] = []
    for row in range(match.start, match.end):
        if row in match.excluded:
            continue
        frame = Frame(rows, match.start, match.labels, row, number, names)
        values: list[Value] = []
        for measure in sp.query.measures:
            try:
                values.append(evaluate(measure, frame, row))
            except RowPatternError:
                values.append(None)
        prefix = events[: row - match.start + 1]
        out.append(Decided(match, tuple(values), time, key_value, prefix, rows[row]))
    return out


def _absent(
    sp: SqlProgram,
    state: KeyRows,
    match: Match,
    rows: Sequence[Row],
    limit: int,
    now: int,
    ended: bool,
) -> bool | None:
    """True: no row satisfying the absent variable follows the match inside its window
    (decided once the window closed); False: one does; None: not decided yet."""
    assert sp.absent is not None
    program = sp.query.program
    gap = len(program.names)  # rows between the match and a candidate: a nameless label
    condition = _condition(program, rows, state.number, (*program.names, ""))
    end = bisect_left(state.times, limit, lo=match.end)
    for j in range(match.end, end):
        labels = (*match.labels, *([gap] * (j - match.end)), sp.absent)
        try:
            if condition(sp.absent, match.start, labels):
                return False
        except NeedMoreRows:
            return None
    closed = ended or end < len(state.rows) or now >= limit
    return True if closed else None
