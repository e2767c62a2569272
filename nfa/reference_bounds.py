"""The engine bounds of `EngineConfig`, as the reference engine applies them.

Both engines check the bounds after every `process` and `advance_watermark` call (after
the release and the watermark advance, so nothing that could still be matched now is
dropped); 0 means unbounded.

- `max_buffered_events`: events waiting for the watermark. Beyond the bound the oldest
  arrivals are dropped, whatever their key; they are never matched and are counted in
  `counters.events_dropped`.
- `max_keys`: keys holding state, that is partial matches or matches held back by a skip
  strategy, in any rule. Idle keys (no partial match) hold no state and never count: the
  engines reclaim them at once, so they are in effect always evicted first. Beyond the
  bound the least recently active keys (by the order of their last released event; ties:
  smaller key id) are evicted: their partial and held-back matches are dropped (counted in
  `counters.partial_matches_dropped`) and each key is counted in `counters.keys_evicted`.
  Their waiting events stay buffered (bounded by `max_buffered_events`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nfa.reference import ReferenceEngine


def enforce_bounds(engine: ReferenceEngine) -> None:
    limit = engine.config.max_buffered_events
    waiting = sum(len(events) for events in engine.buffer.values())
    if limit and waiting > limit:
        arrivals = sorted(e.order for events in engine.buffer.values() for e in events)
        cut = arrivals[waiting - limit - 1]
        for key in list(engine.buffer):
            engine.buffer[key] = [e for e in engine.buffer[key] if e.order > cut]
            if not engine.buffer[key]:
                del engine.buffer[key]
        engine.counters.events_dropped += waiting - limit
    live = sorted({key for key, _ in engine.states})
    if engine.config.max_keys and len(live) > engine.config.max_keys:
        live.sort(key=lambda k: (engine.last_active.get(k, 0), k))
        for key in live[: len(live) - engine.config.max_keys]:
            for rule in range(len(engine.nfas)):
                state = engine.states.pop((key, rule), None)
                if state is not None:
                    dropped = len(state.runs) + len(state.completed)
                    engine.counters.partial_matches_dropped += dropped
            engine.counters.keys_evicted += 1
