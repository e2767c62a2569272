"""All SQL rules of an engine: the jitted engine for the rules it runs, Python for the rest.

`SqlEngine` has the engine API. Each SQL program runs on `nfa.rowpattern_jit`'s kernels
when `kernel_supported` says so (and `jit` is on), else on the pure-Python
`nfa.rowpattern_stream.RowPatternEngine`; both see every batch and keep the same watermarks,
so late events are reported once (by the jitted part when there is one). Matches are
merged in rule order, which is the order one Python engine emits them in (rule, then key)
in event time; rule indices are this engine's.

Snapshot: `CEPSQLM`, a JSON header (which program ran where, the parts' lengths), then the
parts. A snapshot of a bare `RowPatternEngine` (taken before the jitted engine existed) is
restored too: its rules' retained rows and waiting events move to the kernels' arrays
(`nfa.rowpattern_convert`).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from nfa.batch import EventBatch, StringPool
from nfa.reference import EngineConfig
from nfa.results import EngineOutput
from nfa.rowpattern_jit import JitRowPatternEngine, kernel_supported
from nfa.rowpattern_rule import SqlProgram
from nfa.rowpattern_stream import RowPatternEngine

if TYPE_CHECKING:
    from nfa.migrate import CarryOver

MAGIC = b"CEPSQLM"
_HEADER = struct.Struct("<7sI")


class SqlEngine:
    """SQL programs on kernels (`fast`) or in Python (`slow`); outputs merged."""

    def __init__(
        self,
        programs: Sequence[SqlProgram],
        pool: StringPool,
        config: EngineConfig | None = None,
        jit: bool = True,
        on_kernel: Sequence[bool] | None = None,
    ):
        self.programs = list(programs)
        self.config = config or EngineConfig()
        if on_kernel is None:
            on_kernel = [jit and kernel_supported(sp) for sp in self.programs]
        self.on_kernel = list(on_kernel)
        self.fast_rules = [i for i, k in enumerate(self.on_kernel) if k]
        self.slow_rules = [i for i, k in enumerate(self.on_kernel) if not k]
        fast = [self.programs[i] for i in self.fast_rules]
        slow = [self.programs[i] for i in self.slow_rules]
        self.fast = JitRowPatternEngine(fast, pool, self.config) if fast else None
        self.slow = RowPatternEngine(slow, pool, self.config) if slow else None
        self.pool = pool

    @property
    def parts(self) -> tuple[JitRowPatternEngine | None, RowPatternEngine | None]:
        return self.fast, self.slow

    def live_keys(self) -> int:
        """(rule, key) pairs holding rows for matches still to be decided."""
        fast = self.fast.live_keys() if self.fast else 0
        slow = sum(bool(s.rows) for s in self.slow.states.values()) if self.slow else 0
        return fast + slow

    def process(self, batch: EventBatch) -> EngineOutput:
        if self.config.processing_time and self.fast and self.slow:
            return self._by_event(batch, self.fast, self.slow)
        return self._merge(
            self.fast.process(batch) if self.fast else None,
            self.slow.process(batch) if self.slow else None,
        )

    def _by_event(
        self, batch: EventBatch, fast: JitRowPatternEngine, slow: RowPatternEngine
    ) -> EngineOutput:
        """Processing time: matches in the order of the events that decided them (then
        rule), as one Python engine deciding on each arrival emits them; the Python side
        is fed an event at a time to know which event decided what."""
        out = fast.process(batch)
        tagged = [
            (event, self.fast_rules[m.rule], m)
            for event, m in zip(fast.last_events, out.matches, strict=True)
        ]
        for i in range(len(batch)):
            tagged += [
                (i, self.slow_rules[m.rule], m) for m in slow.process(batch.slice(i, i + 1)).matches
            ]
        tagged.sort(key=lambda t: (t[0], t[1]))
        out.matches = [replace(m, rule=rule) for _, rule, m in tagged]
        return out

    def advance_watermark(self, stream: int, watermark: int) -> EngineOutput:
        return self._merge(
            self.fast.advance_watermark(stream, watermark) if self.fast else None,
            self.slow.advance_watermark(stream, watermark) if self.slow else None,
        )

    def finish(self) -> EngineOutput:
        return self._merge(
            self.fast.finish() if self.fast else None,
            self.slow.finish() if self.slow else None,
        )

    def _merge(self, fast: EngineOutput | None, slow: EngineOutput | None) -> EngineOutput:
        if slow is None and fast is not None and len(self.fast_rules) == len(self.programs):
            return fast  # every rule on kernels: indices agree
        out = EngineOutput()
        for part, index in ((fast, self.fast_rules), (slow, self.slow_rules)):
            if part is not None:
                out.matches.extend(replace(m, rule=index[m.rule]) for m in part.matches)
        if not self.config.processing_time:  # rule, then key: as one Python engine
            out.matches.sort(key=lambda m: m.rule)
        out.late.extend((fast if fast is not None else slow or EngineOutput()).late)
        return out

    def snapshot(self) -> bytes:
        fast = self.fast.snapshot() if self.fast else b""
        slow = self.slow.snapshot() if self.slow else b""
        header = json.dumps({"on_kernel": self.on_kernel, "fast": len(fast), "slow": len(slow)})
        text = header.encode()
        return _HEADER.pack(MAGIC, len(text)) + text + fast + slow

    @classmethod
    def restore(
        cls,
        programs: Sequence[SqlProgram],
        pool: StringPool,
        data: bytes,
        config: EngineConfig | None = None,
        keep: CarryOver | None = None,
        jit: bool = True,
    ) -> SqlEngine:
        """From `snapshot()` bytes (or a `RowPatternEngine`'s); with `keep` (see
        `nfa.migrate`), from a snapshot taken with other rules."""
        if not data.startswith(MAGIC):
            from nfa.rowpattern_convert import from_python_snapshot

            return from_python_snapshot(programs, pool, data, config, keep, jit)
        (_, length) = _HEADER.unpack_from(data)
        header = json.loads(data[_HEADER.size : _HEADER.size + length])
        body = data[_HEADER.size + length :]
        fast_data, slow_data = body[: header["fast"]], body[header["fast"] :]
        old_on_kernel: list[bool] = header["on_kernel"]
        if keep is None:
            if len(old_on_kernel) != len(programs):
                raise ValueError("snapshot was taken with different rules")
            keep = list(range(len(programs)))
        on_kernel = [jit and kernel_supported(sp) for sp in programs]
        moved = any(
            old is not None and old_on_kernel[old] != kind
            for old, kind in zip(keep, on_kernel, strict=True)
        )
        new_side = (any(on_kernel) and not fast_data) or (not all(on_kernel) and not slow_data)
        if moved or new_side:
            # A rule changes sides, or a side is new: through the Python engine's format,
            # which either side restores (rows, positions, waiting events, watermarks).
            from nfa.rowpattern_convert import from_python_snapshot, python_snapshot

            joined = python_snapshot(programs, pool, keep, old_on_kernel, fast_data, slow_data)
            return from_python_snapshot(programs, pool, joined, config, keep, jit)
        engine = cls(programs, pool, config, jit, on_kernel)
        old_local = _local_indices(old_on_kernel)
        for side, rules, data_part, kind in (
            ("fast", engine.fast_rules, fast_data, True),
            ("slow", engine.slow_rules, slow_data, False),
        ):
            if not rules:
                continue
            part_keep: list[int | None] = []
            for rule in rules:
                old = keep[rule]
                part_keep.append(None if old is None else old_local[old])
            kinds = JitRowPatternEngine if kind else RowPatternEngine
            part_programs = [engine.programs[i] for i in rules]
            restored = kinds.restore(part_programs, pool, data_part, engine.config, part_keep)
            setattr(engine, side, restored)
        return engine


def _local_indices(on_kernel: Sequence[bool]) -> list[int]:
    """Each rule's index within its side."""
    counts = [0, 0]
    out = []
    for kind in on_kernel:
        out.append(counts[kind])
        counts[kind] += 1
    return out
