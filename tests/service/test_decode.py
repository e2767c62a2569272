"""The Numba JSON decoder against the orjson reference decoder, on generated messages.

Messages are built token by token so that they cover what orjson accepts and rejects:
random subsets and orders of the stream's fields, values of the right and wrong types,
numbers in every JSON form, strings with escapes and non-ASCII text, nested unknown
fields, duplicate keys, odd whitespace, and bytes mutated into garbage. Both decoders must
produce the same columns (strings compared through their pools), the same rejected indices
and equivalent reasons.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nfa.batch import EventBatch, StringPool
from nfa.expr import Type
from nfa.program import Schema, StreamSchema
from service.decode import ReferenceDecoder, Rejected, StreamDecoder

FIELDS = (
    ("card", Type.STRING),
    ("amount", Type.FLOAT),
    ("n", Type.INT),
    ("flag", Type.BOOL),
    ("name", Type.STRING),
    ("ts", Type.TIMESTAMP),
)
OTHER = StreamSchema("other", "k", None, 0, None, (("k", Type.STRING), ("x", Type.FLOAT)))
SCHEMAS = {
    "string key, time field": Schema(
        (OTHER, StreamSchema("events", "card", "ts", 0, None, FIELDS))
    ),
    "int key, record time": Schema((StreamSchema("events", "n", None, 0, None, FIELDS), OTHER)),
}
NAMES = [name for name, _ in FIELDS]

WS = st.text(alphabet=" \t\n\r", max_size=2)
NUMBER_TEXT = st.from_regex(r"-?(0|[1-9][0-9]{0,22})(\.[0-9]{1,22})?([eE][+-]?[0-9]{1,3})?", fullmatch=True)  # fmt: skip
TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
ISO = st.datetimes(
    min_value=dt.datetime(1600, 1, 1),  # noqa: DTZ001 (naive bounds, zones below)
    max_value=dt.datetime(2300, 1, 1),  # noqa: DTZ001
    timezones=st.sampled_from([dt.timezone(dt.timedelta(minutes=m)) for m in (0, 60, -330, 1439)]),
).map(lambda d: d.isoformat(sep=" " if d.second % 2 else "T").replace("+00:00", "Z"))
PLAIN = st.one_of(
    st.integers(min_value=-(2**65), max_value=2**65),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
    st.booleans(),
    st.none(),
    ISO,
    st.sampled_from(
        [
            "2026-01-01T00:00:00",
            "2026-02-30T00:00:00Z",
            "2026-01-01T00:00:00.1234567+01:00",
            "20260101T000000Z",
            "card-1",
            "card-2",
            "x",
        ]
    ),
    st.integers(min_value=1_700_000_000_000, max_value=1_800_000_000_000),
)
NESTED = st.recursive(PLAIN, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3), max_leaves=6)  # fmt: skip


@st.composite
def value_text(draw: st.DrawFn) -> str:
    """One JSON value as text, in one of several encodings."""
    how = draw(st.integers(0, 9))
    if how == 0:
        return draw(NUMBER_TEXT)
    if how == 1:
        return draw(st.sampled_from(['"\\ud83d\\ude00"', '"\\ud800"', '"a\\/b\\"\\\\\\b\\f\\n\\r\\t"', '"\\u00e9"', '"\\x"', "-0", "-0.0", "1e400", "1E-400", "18446744073709551615", "1" * 19]))  # fmt: skip
    value = draw(NESTED)
    if how <= 4:
        return json.dumps(value, ensure_ascii=draw(st.booleans()))
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@st.composite
def message(draw: st.DrawFn) -> bytes | None:
    """One Kafka value: mostly objects of the stream's fields, sometimes garbage."""
    kind = draw(st.integers(0, 19))
    if kind == 0:
        return None
    if kind == 1:
        return draw(st.binary(max_size=20))
    if kind == 2:
        return draw(value_text()).encode()
    keys = draw(st.lists(st.sampled_from([*NAMES, "other", "nested", "caf\u00e9", "\\u0063ard"]), max_size=9))  # fmt: skip
    parts = []
    for key in keys:
        quoted = key if key.startswith("\\") else json.dumps(key, ensure_ascii=False)[1:-1]
        parts.append(f'{draw(WS)}"{quoted}"{draw(WS)}:{draw(WS)}{draw(value_text())}{draw(WS)}')
    text = draw(WS) + "{" + ",".join(parts) + "}" + draw(WS)
    data = bytearray(text.encode())
    if kind == 3 and data:  # mutate one byte into anything
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if kind == 4 and data:
        del data[draw(st.integers(0, len(data) - 1)) :]
    return bytes(data)


@st.composite
def typed_message(draw: st.DrawFn) -> bytes:
    """A well-formed event with every field of its right type (a likely accept)."""
    event: dict[str, Any] = {
        "card": draw(st.sampled_from(["c1", "c2", "caf\u00e9", "a\nb", ""])),
        "amount": draw(
            st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**6), 10**6)
        ),
        "n": draw(st.integers(-(2**63), 2**63 - 1)),
        "flag": draw(st.booleans()),
        "name": draw(TEXT),
        "ts": draw(st.integers(0, 2**50) | ISO | st.floats(-1e15, 1e15)),
    }
    keys = draw(st.permutations(list(event)))
    return orjson.dumps({k: event[k] for k in keys})


@st.composite
def batch(draw: st.DrawFn) -> list[bytes | None]:
    return draw(st.lists(message() | typed_message(), min_size=1, max_size=8))


def _strings(batch: EventBatch, schema: Schema, pool: StringPool) -> list[list[object]]:
    rows: list[list[object]] = []
    for column in schema.columns:
        if column.type is Type.FLOAT:
            rows.append(batch.floats[column.slot].view(np.int64).tolist())
        elif column.type is Type.STRING:
            rows.append([pool.value(int(i)) for i in batch.ints[column.slot]])
        else:
            rows.append(batch.ints[column.slot].tolist())
    return rows


def _same_reason(fast: Rejected, reference: Rejected) -> bool:
    if reference.reason.startswith("invalid JSON"):
        return fast.reason.startswith("invalid JSON")
    return fast.reason == reference.reason


def check(schema: Schema, values: list[bytes | None], fast: StreamDecoder) -> None:
    pools = StringPool(), StringPool()
    expected, expected_rejects = ReferenceDecoder(schema, "events", *pools, 400).decode(
        values, list(range(100, 100 + len(values))), list(range(len(values)))
    )
    got, rejects = fast.decode(values, list(range(100, 100 + len(values))), list(range(len(values))))  # fmt: skip
    assert [r.index for r in rejects] == [r.index for r in expected_rejects], (rejects, expected_rejects)  # fmt: skip
    for mine, theirs in zip(rejects, expected_rejects, strict=True):
        assert mine.reason and _same_reason(mine, theirs), (mine, theirs)
    assert got.stream.tolist() == expected.stream.tolist()
    assert got.ts.tolist() == expected.ts.tolist()
    assert got.seq.tolist() == expected.seq.tolist()
    assert got.valid.tolist() == expected.valid.tolist()
    assert [fast.keys.value(int(k)) for k in got.key] == [pools[1].value(int(k)) for k in expected.key]  # fmt: skip
    assert _strings(got, schema, fast.pool) == _strings(expected, schema, pools[0])


@pytest.mark.parametrize("name", list(SCHEMAS))
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=batch())
def test_fast_decoder_matches_reference(name: str, values: list[bytes | None]) -> None:
    schema = SCHEMAS[name]
    fast = StreamDecoder(schema, "events", StringPool(), StringPool(), 400)
    check(schema, values, fast)
    check(schema, values, fast)  # again: strings now come from the decoder's tables


@settings(max_examples=100, deadline=None)
@given(values=batch())
def test_uncached_fields_and_table_resets(values: list[bytes | None]) -> None:
    schema = SCHEMAS["string key, time field"]
    fast = StreamDecoder(schema, "events", StringPool(), StringPool(), 400)
    fast.tables.max_entries = 2
    fast.plan.cached[:] = False
    check(schema, values, fast)
    fast.plan.cached[:] = True
    check(schema, values * 3, fast)
