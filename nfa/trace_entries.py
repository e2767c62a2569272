"""The values a why-(not)-fired trace records (see `nfa.trace`), and time formatting.

Plain frozen values, one per thing that happened to the traced key's partial matches, so a
renderer (`service.trace`) or a test can read the walk without the engine's objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from nfa.reference import END_OF_TIME, NO_TIME


def iso(ms: int) -> str:
    """Epoch milliseconds as ISO-8601 UTC (`...Z`); the engine's sentinels as words."""
    if ms >= END_OF_TIME:
        return "end of input"
    if ms <= NO_TIME:
        return "start"
    text = datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")
    return text.replace(".000+00:00", "Z").replace("+00:00", "Z")


def duration(ms: int) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


@dataclass(frozen=True, slots=True)
class RunView:
    """A partial match as shown: its state's name and the (stage, seq) events taken."""

    state: str
    taken: tuple[tuple[str, int], ...]

    def label(self) -> str:
        """`[small×2, big]`: the stages taken, consecutive repeats counted."""
        parts: list[list[object]] = []
        for stage, _ in self.taken:
            if parts and parts[-1][0] == stage:
                parts[-1][1] = int(str(parts[-1][1])) + 1
            else:
                parts.append([stage, 1])
        return "[" + ", ".join(f"{s}×{n}" if n != 1 else str(s) for s, n in parts) + "]"


@dataclass(frozen=True, slots=True)
class Condition:
    """A leaf condition with its value and the values of what it read."""

    text: str
    value: str  # true, false or null
    reads: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class EdgeTrial:
    source: str  # state name
    action: str  # take, ignore, proceed
    stage: str | None  # the stage a take appends to
    target: str
    target_kind: str  # normal, final, stop, pending
    condition: str
    held: bool
    because: tuple[Condition, ...]  # the leaves that decided the outcome


@dataclass(frozen=True, slots=True)
class Released:
    """An event of the key released to the rule, with the partial matches before it."""

    seq: int
    ts: int
    runs: tuple[RunView, ...]


@dataclass(frozen=True, slots=True)
class Step:
    """One partial match (`run` None: the start state) tried on the released event."""

    seq: int
    run: RunView | None
    edges: tuple[EdgeTrial, ...]
    continues: tuple[RunView, ...]
    completed: tuple[RunView, ...]
    stopped: str | None  # the stop state reached: discarded by a negation
    strict: bool  # no ignore edge: the event had to be taken


@dataclass(frozen=True, slots=True)
class Expired:
    """Time passed a partial match's window: timed out, or an absence completed (pending)."""

    now: int
    run: RunView
    start_ts: int
    window_ms: int
    absence: bool


@dataclass(frozen=True, slots=True)
class Emitted:
    """A match (or a reported timeout) leaving the engine."""

    run: RunView
    time: int
    timed_out: bool
    fields: tuple[tuple[str, object], ...]


@dataclass(frozen=True, slots=True)
class Pruned:
    run: RunView
    by: RunView  # the emitted match
    skip: str
    completed: bool  # a completed match held back, not a partial one


@dataclass(frozen=True, slots=True)
class HeldBack:
    run: RunView
    waiting_for: RunView | None


@dataclass(frozen=True, slots=True)
class Capped:
    dropped: int
    limit: int


@dataclass(frozen=True, slots=True)
class Late:
    seq: int
    ts: int
    stream: str
    watermark: int


@dataclass(frozen=True, slots=True)
class Watermark:
    """Time advanced to a watermark (no event of the key) and closed windows."""

    now: int


@dataclass(frozen=True, slots=True)
class Ending:
    """The input ended: a final watermark follows that fires every pending timer."""


@dataclass(frozen=True, slots=True)
class Finished:
    """End of input; the partial matches still open (rules without a window keep them)."""

    open_runs: tuple[RunView, ...]


Entry = (
    Released
    | Step
    | Expired
    | Emitted
    | Pruned
    | HeldBack
    | Capped
    | Late
    | Watermark
    | Ending
    | Finished
)
