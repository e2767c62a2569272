"""Derived events (alerts) as JSON, with ids that do not change when input is reprocessed.

Schema of an alert (the value; the Kafka key is the rule's key):

    {"id": "c0ffee...",              # sha256 of rule, version, key and input event ids
     "rule": "card_testing", "version": 1, "severity": "high", "labels": ["card"],
     "key": "card-42", "time": 1767261780000,   # event time the match was decided
     "start": 1767261600000, "end": 1767261780000,
     "timed_out": false,
     "events": [{"stage": "small", "id": "txns/3/1041", "ts": 1767261600000}, ...],
     "fields": {...}}                 # the rule's `emit { ... }` fields

An input event id is `topic/partition/offset` in the daemon, or the event id in a replay.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import orjson

from nfa.program import Program
from nfa.results import Match

EventIdOf = Callable[[int], str]


def alert_document(match: Match, program: Program, key: str, event_id: EventIdOf) -> dict[str, Any]:
    info = program.info
    ids = [event_id(e.seq) for e in match.events]
    events = [
        {"stage": program.stage_names[e.stage], "id": ident, "ts": e.ts}
        for e, ident in zip(match.events, ids, strict=True)
    ]
    digest = hashlib.sha256(
        "\x1f".join([info.name, str(info.version), key, *ids]).encode()
    ).hexdigest()[:32]
    return {
        "id": digest,
        "rule": info.name,
        "version": info.version,
        "severity": info.severity,
        "labels": list(info.labels),
        "key": key,
        "time": match.time,
        "start": match.start,
        "end": match.end,
        "timed_out": match.timed_out,
        "events": events,
        "fields": dict(match.fields),
    }


def encode(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document)
