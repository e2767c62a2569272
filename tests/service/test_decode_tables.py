"""The JSON kernel's key-order guess and string table, against the reference decoder.

The kernel guesses each key from the previous message's key at the same position, and
resolves strings through a byte-keyed table that grows by rehashing, is cleared when full
and stops caching a field whose values never repeat. These tests drive those paths (near
miss keys, escaped keys, reordered and duplicate keys, long strings kept in the arena,
many distinct values) and compare every batch with the orjson reference.
"""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_decode import NAMES, SCHEMAS, check, value_text

from nfa.batch import StringPool
from service.decode import StreamDecoder
from service.fastjson_strings import HASH, LENGTH, StringTables, _rows

CARDS = ["c1", "c2", "caf\u00e9", "", "a-card-number-longer-than-the-inline-bytes"]
NEAR_MISSES = ["car", "cardx", "\\u0063ard", "ts ", "Amount", "n\\u0000"]


@st.composite
def field_value(draw: st.DrawFn, name: str) -> str:
    """A value for field `name`: usually of its type, sometimes anything."""
    if draw(st.integers(0, 4)) == 0:
        return draw(value_text())
    if name == "card":
        return json.dumps(draw(st.sampled_from(CARDS)), ensure_ascii=False)
    if name in ("amount", "ts"):
        return str(draw(st.integers(0, 2**40)))
    if name == "n":
        return str(draw(st.integers(-(2**63), 2**63 - 1)))
    if name == "flag":
        return draw(st.sampled_from(["true", "false"]))
    return json.dumps(draw(st.text(max_size=30)), ensure_ascii=False)


@st.composite
def same_shape_batch(draw: st.DrawFn) -> list[bytes | None]:
    """Messages that mostly share one key order (as a producer writes them), with some
    keys replaced by near misses or escaped forms, swapped or repeated."""
    keys = draw(st.lists(st.sampled_from([*NAMES, "other", "nested"]), min_size=1, max_size=8, unique=True))  # fmt: skip
    out: list[bytes | None] = []
    for _ in range(draw(st.integers(2, 12))):
        names = list(keys)
        change = draw(st.integers(0, 7))
        at = draw(st.integers(0, len(names) - 1))
        if change == 0:
            names[at] = draw(st.sampled_from(NEAR_MISSES))
        elif change == 1 and len(names) > 1:
            names[0], names[at] = names[at], names[0]
        elif change == 2:
            names.insert(at, names[at])
        elif change == 3:
            names = names[:at]
        gap = draw(st.sampled_from(["", " ", "\n"]))
        parts = [f'"{name}"{gap}:{draw(field_value(name))}' for name in names]
        out.append(("{" + ",".join(parts) + "}").encode())
    return out


@pytest.mark.parametrize("name", list(SCHEMAS))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=same_shape_batch())
def test_key_order_guess_matches_reference(name: str, values: list[bytes | None]) -> None:
    schema = SCHEMAS[name]
    fast = StreamDecoder(schema, "events", StringPool(), StringPool(), 400)
    check(schema, values, fast)
    check(schema, values[::-1], fast)  # again, from warm tables and another order


def _events(start: int, count: int, long: bool) -> list[bytes | None]:
    """Events over many distinct cards and names; `long` ones go to the table's arena."""
    prefix = "card-with-a-long-common-prefix-" if long else "c"
    return [
        orjson.dumps({"card": f"{prefix}{i % 7919}", "amount": i, "name": f"n{i}", "ts": i, "n": i})
        for i in range(start, start + count)
    ]


@pytest.mark.parametrize("long", [False, True])
def test_table_growth_and_clears_keep_ids(long: bool) -> None:
    """A table that starts tiny grows several times, then is cleared when full; every
    batch still decodes like the reference and the pools stay consistent."""
    schema = SCHEMAS["string key, time field"]
    fast = StreamDecoder(schema, "events", StringPool(), StringPool(), 400)
    fast.tables = StringTables(capacity=16, max_entries=6000)
    capacities, clears = set(), 0
    for start in range(0, 15_000, 500):
        entries = int(fast.tables.state[1])
        check(schema, _events(start, 500, long), fast)
        capacities.add(len(fast.tables.rows))
        clears += int(fast.tables.state[1]) < entries
    assert len(capacities) > 2 and clears > 0
    assert len(fast.keys) == 7919 + 1  # each card interned once, whatever the clears


def test_field_of_unique_values_stops_being_cached() -> None:
    """`name` never repeats: it fills the table and is uncached at the clear; `card`
    repeats and stays cached."""
    schema = SCHEMAS["string key, time field"]
    fast = StreamDecoder(schema, "events", StringPool(), StringPool(), 400)
    fast.tables = StringTables(capacity=16, max_entries=20_000)
    for start in range(0, 30_000, 1000):
        check(schema, _events(start, 1000, False), fast)
    fields = [c.field for c in fast.plan.fields]
    assert not fast.plan.cached[fields.index("name")]
    assert fast.plan.cached[fields.index("card")]


def test_card_numbers_spread_over_the_table() -> None:
    """Card-like strings differ in a few bytes; their slots must still spread (a weak
    hash once gave 35 probes per lookup)."""
    schema = SCHEMAS["string key, time field"]
    fast = StreamDecoder(schema, "events", StringPool(), StringPool(), 400)
    values = [orjson.dumps({"card": f"card-{i:07d}", "ts": i}) for i in range(100_000)]
    fast.decode(values, list(range(len(values))), [0] * len(values))
    rows = fast.tables.rows
    used = np.flatnonzero(rows[:, LENGTH] >= 0)
    home = (rows[used, HASH].view(np.uint64) & np.uint64(len(rows) - 1)).astype(np.int64)
    probes = ((used - home) & (len(rows) - 1)) + 1
    assert len(used) == 100_000
    assert probes.mean() < 2


@pytest.mark.parametrize("capacity", [16, 1 << 16])
def test_rows_are_empty_and_cache_line_aligned(capacity: int) -> None:
    rows = _rows(capacity)  # the larger one is mapped for huge pages
    assert rows.shape == (capacity, 8)
    assert rows.ctypes.data % 64 == 0
    assert (rows[:, LENGTH] == -1).all()
