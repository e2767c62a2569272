"""Versioned snapshots of the product engine: a header, JSON scalars, then numpy arrays.

Layout: the magic `CEPNFA`, a format version (uint16), the length of a JSON document
(uint32), the JSON (watermarks, counters, program fingerprints, array names), and an
uncompressed `.npz` archive with the waiting-event buffer and every rule's state arrays.
Restoring into an engine built for the same programs continues exactly where the
snapshot was taken. No pickles: `np.load(allow_pickle=False)`.
"""

from __future__ import annotations

import dataclasses
import io
import json
import struct
from typing import TYPE_CHECKING, Any

import numpy as np

from nfa.batch import EventBatch
from nfa.kernel_keys import table_from_dense
from nfa.kernel_store import KF, MF

if TYPE_CHECKING:
    from nfa.engine import Engine
    from nfa.migrate import CarryOver

MAGIC = b"CEPNFA"
FORMAT_VERSION = 3  # 2: per-rule slot layouts, K_DUE; 3: key tables (nfa.kernel_keys)
_HEADER = struct.Struct("<6sHI")
BUFFER_FIELDS = ("stream", "key", "ts", "seq", "floats", "ints", "valid")


class SnapshotError(ValueError):
    """The bytes are not a snapshot this engine can restore."""


def write_snapshot(engine: Engine) -> bytes:
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    for name in BUFFER_FIELDS:
        arrays[f"buffer.{name}"] = getattr(engine.buffer, name)
    arrays["last_active"] = engine.last_active
    for r, state in enumerate(engine.states):
        for i, array in enumerate(state):
            arrays[f"rule{r}.{i}"] = array
    meta = {
        "fingerprints": [p.fingerprint() for p in engine.programs],
        "watermark": engine.watermark,
        "order": engine.order,
        "stream_max": sorted(engine.stream_max.items()),
        "stream_watermark": sorted(engine.stream_watermark.items()),
        "counters": dataclasses.asdict(engine.counters),
        "state_arrays": [len(s) for s in engine.states],
    }
    body = io.BytesIO()
    np.savez(body, allow_pickle=False, **arrays)
    text = json.dumps(meta).encode()
    return _HEADER.pack(MAGIC, FORMAT_VERSION, len(text)) + text + body.getvalue()


def read_snapshot(engine: Engine, data: bytes, keep: CarryOver | None = None) -> None:
    """Restore `engine` from `write_snapshot` bytes.

    Without `keep` the snapshot must have been taken with the same programs. With `keep`
    (one entry per program of `engine`: the snapshot's rule it continues, or None), rule
    states are picked by it and the other rules keep the empty state they were built with;
    the event buffer, watermarks and counters carry over whole (see `nfa.migrate`).
    """
    if len(data) < _HEADER.size:
        raise SnapshotError("snapshot too short")
    magic, version, length = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise SnapshotError("not an engine snapshot")
    if version not in (2, FORMAT_VERSION):
        raise SnapshotError(f"snapshot format {version}, this engine reads 2 and {FORMAT_VERSION}")
    meta = json.loads(data[_HEADER.size : _HEADER.size + length])
    fingerprints = [p.fingerprint() for p in engine.programs]
    if keep is None:
        if meta["fingerprints"] != fingerprints:
            raise SnapshotError("snapshot was taken with different rules")
        keep = list(range(len(fingerprints)))
    for new, old in enumerate(keep):
        if old is not None and meta["fingerprints"][old] != fingerprints[new]:
            raise SnapshotError(f"rule {new} cannot continue rule {old} of the snapshot")
    with np.load(io.BytesIO(data[_HEADER.size + length :]), allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    if version == 2:  # a row per key id: into key tables
        for r in range(len(meta["state_arrays"])):
            K, M = table_from_dense(arrays[f"rule{r}.9"], arrays[f"rule{r}.10"])
            arrays[f"rule{r}.9"], arrays[f"rule{r}.10"] = K, M
    for r in range(len(meta["state_arrays"])):  # kernels do not check bounds
        if arrays[f"rule{r}.10"].shape != (MF,) or arrays[f"rule{r}.9"].shape[1:] != (KF,):
            raise SnapshotError("the snapshot's state arrays do not have this engine's layout")
    if "last_active" in arrays:
        engine.last_active = arrays["last_active"]
    engine.buffer = EventBatch(*(arrays[f"buffer.{name}"] for name in BUFFER_FIELDS))
    counts = meta["state_arrays"]
    engine.states = [
        engine.states[new]
        if old is None
        else tuple(arrays[f"rule{old}.{i}"] for i in range(counts[old]))
        for new, old in enumerate(keep)
    ]
    engine.watermark = int(meta["watermark"])
    engine.order = int(meta["order"])
    engine.stream_max = {int(s): int(v) for s, v in meta["stream_max"]}
    engine.stream_watermark = {int(s): int(v) for s, v in meta["stream_watermark"]}
    for name, value in meta["counters"].items():
        setattr(engine.counters, name, int(value))
