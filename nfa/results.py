"""What the engines return: matches, timed-out partial matches and late events.

These are plain values, rare next to events, so one Python object per match is fine.
Both engines produce the same values, which is what the differential tests compare.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class MatchedEvent:
    stage: int
    seq: int
    ts: int


@dataclass(frozen=True, slots=True)
class Match:
    """A completed match (or, with `timed_out`, a partial match whose window passed)."""

    rule: int  # index of the program in the engine
    key: int
    events: tuple[MatchedEvent, ...]
    time: int  # event time at which it was decided: last event, or window end
    timed_out: bool = False
    fields: tuple[tuple[str, object], ...] = ()  # the rule's output, strings decoded

    @property
    def start(self) -> int:
        return self.events[0].ts

    @property
    def end(self) -> int:
        return self.events[-1].ts


@dataclass(frozen=True, slots=True)
class LateEvent:
    stream: int
    key: int
    seq: int
    ts: int
    watermark: int


@dataclass
class EngineOutput:
    matches: list[Match] = field(default_factory=list)
    timeouts: list[Match] = field(default_factory=list)
    late: list[LateEvent] = field(default_factory=list)

    def extend(self, other: EngineOutput) -> None:
        self.matches.extend(other.matches)
        self.timeouts.extend(other.timeouts)
        self.late.extend(other.late)


@dataclass
class EngineCounters:
    events_in: int = 0
    events_late: int = 0
    matches: int = 0
    timeouts: int = 0
    partial_matches_dropped: int = 0
    events_dropped: int = 0
    keys_evicted: int = 0
