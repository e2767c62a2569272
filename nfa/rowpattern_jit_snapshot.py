"""Snapshots of the jitted row-pattern engine (`nfa.rowpattern_jit`), as
`nfa.engine_snapshot` is for the NFA engine: the magic `CEPSQL`, a format version, the length
of a JSON document (rule identities, watermarks, counters), then an `.npz` archive of the
waiting events and each rule's key table, retained rows (the arena compacted first, so
only its used part is written) and meta array. No pickles.
"""

from __future__ import annotations

import dataclasses
import io
import json
import struct
from typing import TYPE_CHECKING, Any

import numpy as np

from nfa import rowpattern_kernel as rk
from nfa.batch import EventBatch
from nfa.engine_snapshot import BUFFER_FIELDS
from nfa.migrate import renumbering, rule_identity
from nfa.results import EngineCounters

if TYPE_CHECKING:
    from nfa.migrate import CarryOver
    from nfa.rowpattern_jit import JitRowPatternEngine

MAGIC = b"CEPSQL"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<6sHI")
_STORED = 7  # state arrays a snapshot keeps: key table, rows (5 arrays), meta


def write_snapshot(engine: JitRowPatternEngine) -> bytes:
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    for name in BUFFER_FIELDS:
        arrays[f"buffer.{name}"] = getattr(engine.buffer, name)
    for r, rule in enumerate(engine.rules):
        state = rk.compact(engine.states[r])  # also shrinks an arena a burst grew
        if len(state[13]) > 4096 or len(state[15]) > 65536:  # the search's scratch too
            fresh = engine.new_state(rule)
            state = (*state[:13], *fresh[13:])
        engine.states[r] = state
        top = int(state[6][rk.M_TOP])
        stored = (state[0], *(a[:top] for a in state[1:6]), state[6])
        for i, array in enumerate(stored):
            arrays[f"rule{r}.{i}"] = np.ascontiguousarray(array)
    meta = {
        "identities": [rule_identity(p) for p in engine.programs],
        "watermark": engine.watermark,
        "stream_max": sorted(engine.stream_max.items()),
        "stream_watermark": sorted(engine.stream_watermark.items()),
        "counters": dataclasses.asdict(engine.counters),
    }
    body = io.BytesIO()
    np.savez(body, allow_pickle=False, **arrays)
    text = json.dumps(meta).encode()
    return _HEADER.pack(MAGIC, FORMAT_VERSION, len(text)) + text + body.getvalue()


def read_snapshot(engine: JitRowPatternEngine, data: bytes, keep: CarryOver | None) -> None:
    """Restore `engine` (built for its programs) from `write_snapshot` bytes; with `keep`,
    rule states are renumbered by it (`nfa.migrate`)."""
    meta, arrays = read_arrays(data)
    identities = [rule_identity(p) for p in engine.programs]
    if keep is None:
        if meta["identities"] != identities:
            raise ValueError("snapshot was taken with different rules")
        keep = list(range(len(engine.programs)))
    engine.buffer = EventBatch(*(arrays[f"buffer.{name}"] for name in BUFFER_FIELDS))
    for old, new in renumbering(keep).items():
        fresh = engine.states[new]
        kt, *rows, meta_array = (arrays[f"rule{old}.{i}"] for i in range(_STORED))
        room = max(1024, 2 * int(meta_array[rk.M_TOP]))
        grown = [np.zeros((room, *a.shape[1:]), a.dtype) for a in rows]
        for target, source in zip(grown, rows, strict=True):
            target[: len(source)] = source
        meta_array = meta_array.copy()
        meta_array[rk.M_OUT] = meta_array[rk.M_ROWS] = 0
        engine.states[new] = (kt.copy(), *grown, meta_array, *fresh[_STORED:])
    engine.watermark = int(meta["watermark"])
    engine.stream_max = {int(s): int(t) for s, t in meta["stream_max"]}
    engine.stream_watermark = {int(s): int(t) for s, t in meta["stream_watermark"]}
    engine.counters = EngineCounters(**meta["counters"])


def read_arrays(data: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray[Any, Any]]]:
    """(JSON scalars, arrays) of `write_snapshot` bytes."""
    magic, version, length = _HEADER.unpack_from(data)
    if magic != MAGIC or version != FORMAT_VERSION:
        raise ValueError("not a snapshot of the jitted SQL engine (or another version)")
    meta = json.loads(data[_HEADER.size : _HEADER.size + length])
    with np.load(io.BytesIO(data[_HEADER.size + length :]), allow_pickle=False) as archive:
        return meta, {name: archive[name] for name in archive.files}
