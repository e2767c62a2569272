"""The engine bounds of `EngineConfig`, as the reference engine applies them.

Both engines check the bounds after every `process` and `advance_watermark` call (after
the release and the watermark advance, so nothing that could still be matched now is
dropped), in the order below; 0 means unbounded.

- `max_buffered_events`: events waiting for the watermark. Beyond the bound the oldest
  arrivals are dropped, whatever their key; they are never matched and are counted in
  `counters.events_dropped`.
- `max_runs_per_rule`: partial matches of one rule over all its keys (matches a skip
  strategy holds back are not partial matches and are never dropped). Beyond the bound
  the oldest partial matches of the rule are dropped, whatever their key: ordered by the
  time of their first event, then by that event's arrival (release order), then, for
  partial matches that started with the same event (so of the same key), in the key's
  priority order, which is the order they were created in. Drops are counted in
  `counters.partial_matches_dropped`. A match held back behind a dropped partial match
  is emitted at the key's next event or watermark advance (as if the partial match had
  expired then).
- `max_keys`: keys holding state, that is partial matches or matches held back by a skip
  strategy, in any rule. Idle keys (no partial match) hold no state and never count: the
  engines reclaim them at once, so they are in effect always evicted first. Beyond the
  bound the least recently active keys (by the order of their last released event; ties:
  smaller key id) are evicted: their partial and held-back matches are dropped (counted in
  `counters.partial_matches_dropped`) and each key is counted in `counters.keys_evicted`.
  Their waiting events stay buffered (bounded by `max_buffered_events`).

`max_runs_per_key` is applied by each step, not here (`ReferenceNFA.process`).
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
    if engine.config.max_runs_per_rule:
        for rule in range(len(engine.nfas)):
            drop_oldest_runs(engine, rule, engine.config.max_runs_per_rule)
    # a state emptied by a watermark advance is an idle key, not a live one
    live = sorted({key for (key, _), s in engine.states.items() if s.runs or s.completed})
    if engine.config.max_keys and len(live) > engine.config.max_keys:
        live.sort(key=lambda k: (engine.last_active.get(k, 0), k))
        for key in live[: len(live) - engine.config.max_keys]:
            for rule in range(len(engine.nfas)):
                state = engine.states.pop((key, rule), None)
                if state is not None:
                    dropped = len(state.runs) + len(state.completed)
                    engine.counters.partial_matches_dropped += dropped
            engine.counters.keys_evicted += 1


def drop_oldest_runs(engine: ReferenceEngine, rule: int, limit: int) -> None:
    """`max_runs_per_rule` for one rule: drop its oldest partial matches beyond `limit`."""
    ages: list[tuple[int, int, int, int]] = []  # (start time, start order, position, key)
    for (key, r), state in engine.states.items():
        if r == rule:
            for position, run in enumerate(state.runs):
                assert run.start is not None
                ages.append((run.start.ts, run.start.order, position, key))
    excess = len(ages) - limit
    if excess <= 0:
        return
    ages.sort()
    victims: dict[int, set[int]] = {}
    for _, _, position, key in ages[:excess]:
        victims.setdefault(key, set()).add(position)
    for key, positions in victims.items():
        state = engine.states[(key, rule)]
        state.runs = [run for p, run in enumerate(state.runs) if p not in positions]
        if not state.runs and not state.completed:
            del engine.states[(key, rule)]
    engine.counters.partial_matches_dropped += excess
