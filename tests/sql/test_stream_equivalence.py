"""The streaming row pattern engine finds exactly the bounded matcher's matches.

Every conformance case whose input fits a stream (integer, double, varchar and boolean
columns) is run as ONE ROW PER MATCH twice: by the bounded matcher (`cep.sql.execute`) and
through `RowPatternEngine` as events, in random batches, a little out of order (within the
stream's out-of-orderness), with random watermark advances and a snapshot/restore round
trip in the middle. The matches of each partition, in order, and their measures must agree.
The rows get a synthetic key (the PARTITION BY values) and a synthetic event time (their
rank in ORDER BY order, so ties keep the input order as the bounded matcher does).

The cases the kernels run (`nfa.rowpattern_jit.kernel_supported`) also go through
`JitRowPatternEngine` the same way: every such case when `CEP_JIT_CONFORMANCE=1` (each is a
rule of its own: a Numba compile of seconds), else every `JIT_SAMPLE`-th.
"""

from __future__ import annotations

import json
import math
import os
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from cep.errors import CepError
from cep.sql import ast, parse_query
from cep.sql.compiler import compile_match_recognize
from cep.sql.execute import _sort_key, execute
from cep.sql.parser import parse_match_recognize
from nfa.batch import StringPool, batch_from_records
from nfa.expr import Type
from nfa.program import RuleInfo, Schema, StreamSchema
from nfa.results import EngineOutput
from nfa.rowpattern_expr import RowPatternError
from nfa.rowpattern_jit import JitRowPatternEngine, kernel_supported
from nfa.rowpattern_rule import SqlProgram
from nfa.rowpattern_stream import RowPatternEngine

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT.parent / "shared" / "conformance" / "match_recognize" / "cases.json"
SUITE = Path(os.environ.get("CEP_MATCH_RECOGNIZE_CASES", DEFAULT))
TYPES = {
    "integer": Type.INT,
    "bigint": Type.INT,
    "smallint": Type.INT,
    "tinyint": Type.INT,
    "double": Type.FLOAT,
    "real": Type.FLOAT,
    "varchar": Type.STRING,
    "boolean": Type.BOOL,
}


def _cases() -> list[dict[str, Any]]:
    if not SUITE.exists():
        return []
    cases: list[dict[str, Any]] = json.loads(SUITE.read_text())
    return [c for c in cases if "input" in c and c["input"].get("rows")]


def _clause(sql: str) -> ast.MatchRecognize:
    try:
        return parse_query(sql).match_recognize
    except CepError:
        start = sql.upper().index("MATCH_RECOGNIZE")
        depth = 0
        for end in range(sql.index("(", start), len(sql)):
            depth += {"(": 1, ")": -1}.get(sql[end], 0)
            if depth == 0:
                return parse_match_recognize(sql[start : end + 1])
        raise


def _typed(value: Any, type_: Type) -> Any:
    if value is None:
        return None
    return float(value) if type_ is Type.FLOAT else value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


class Case:
    """One conformance case prepared for both runs (None fields: the case does not fit)."""

    def __init__(self, case: dict[str, Any]):
        inp = case["input"]
        self.columns = [c.lower() for c in inp["columns"]]
        self.types = [t.split("(")[0].lower() for t in inp["types"]]
        if any(t not in TYPES for t in self.types) or {"_k", "_ts"} & set(self.columns):
            raise LookupError("input types do not fit a stream")
        kinds = [TYPES[t] for t in self.types]
        self.rows = [
            tuple(_typed(v, k) for v, k in zip(r, kinds, strict=True)) for r in inp["rows"]
        ]
        mr = _clause(case["sql"])
        if mr.absent is not None or mr.within_ms is not None:
            raise LookupError("streaming extension")
        self.mr = replace(mr, rows_per_match=ast.RowsPerMatch.ONE)
        fields = [*zip(self.columns, kinds, strict=True), ("_k", Type.STRING), ("_ts", Type.INT)]
        self.stream = StreamSchema("t", "_k", "_ts", 3, None, tuple(fields))
        compiled = compile_match_recognize(
            self.mr, [*self.columns, "_k", "_ts"], [*self.types, "varchar", "bigint"], True
        )
        self.partition = compiled.partition
        order = sorted(range(len(self.rows)), key=lambda i: _sort_key(self.rows[i], compiled.order))
        self.ts = {i: rank + 1 for rank, i in enumerate(order)}
        self.program = SqlProgram(
            RuleInfo("case", 1, "low", (), "", True),
            Schema((self.stream,)),
            0,
            len(self.columns),
            compiled.query,
            compiled.measure_names,
        )

    def key(self, row: tuple[Any, ...]) -> str:
        return repr(tuple(row[i] for i in self.partition))

    def bounded(self) -> dict[str, list[tuple[Any, ...]]]:
        result = execute(self.mr, None, self.columns, self.types, self.rows)
        n = len(self.partition)
        out: dict[str, list[tuple[Any, ...]]] = {}
        for row in result.rows:
            out.setdefault(repr(tuple(row[:n])), []).append(tuple(row[n:]))
        return out

    def streamed(self, seed: int, jit: bool = False) -> dict[str, list[tuple[Any, ...]]]:
        rng = random.Random(seed)
        schema = self.program.schema
        pool, keys = StringPool(), StringPool()
        kind: Any = JitRowPatternEngine if jit else RowPatternEngine
        engine = kind([self.program], pool, emit_empty=True)
        # Displaced by less than the out-of-orderness (3): never late.
        arrival = sorted(self.ts, key=lambda i: self.ts[i] + rng.random() * 2.9)
        out = EngineOutput()
        at = 0
        while at < len(arrival):
            size = rng.randint(1, 4)
            chunk = arrival[at : at + size]
            at += size
            records = []
            for i in chunk:
                values = dict(zip(self.columns, self.rows[i], strict=True))
                records.append(("t", {**values, "_k": self.key(self.rows[i]), "_ts": self.ts[i]}))
            out.extend(engine.process(batch_from_records(schema, records, pool, keys, at)))
            if rng.random() < 0.3:
                snapshot = engine.snapshot()
                engine = kind.restore([self.program], pool, snapshot)
                if jit:
                    engine.set_emit_empty(True)
                else:
                    engine.emit_empty = True
            if rng.random() < 0.3 and at < len(arrival):
                upcoming = min(self.ts[i] for i in arrival[at:])
                out.extend(engine.advance_watermark(0, upcoming - 1))
        out.extend(engine.finish())
        assert not out.late
        result: dict[str, list[tuple[Any, ...]]] = {}
        for match in out.matches:
            measures = tuple(v for _, v in match.fields)
            result.setdefault(keys.value(match.key), []).append(measures)
        return result


def _prepared() -> list[Any]:
    params = []
    for case in _cases():
        try:
            prepared = Case(case)
            expected = prepared.bounded()
        except (LookupError, CepError, RowPatternError, ValueError, TypeError):
            continue  # does not fit a stream, or fails on bounded input (an error case)
        params.append(pytest.param(prepared, expected, id=case["id"]))
    return params


PREPARED = _prepared()


@pytest.mark.skipif(not PREPARED, reason="conformance suite not present")
def test_enough_cases_are_covered() -> None:
    assert len(PREPARED) >= 100


JIT_SAMPLE = 8
ON_KERNELS = [p for p in PREPARED if kernel_supported(p.values[0].program)]
JIT_CASES = ON_KERNELS if os.environ.get("CEP_JIT_CONFORMANCE") else ON_KERNELS[::JIT_SAMPLE]


@pytest.mark.skipif(not PREPARED, reason="conformance suite not present")
def test_enough_cases_run_on_kernels() -> None:
    assert len(ON_KERNELS) >= 50


@pytest.mark.parametrize(("case", "expected"), PREPARED)
def test_streaming_equals_bounded(case: Case, expected: dict[str, list[tuple[Any, ...]]]) -> None:
    _check(case, expected, jit=False)


@pytest.mark.parametrize(("case", "expected"), JIT_CASES)
def test_kernels_equal_bounded(case: Case, expected: dict[str, list[tuple[Any, ...]]]) -> None:
    _check(case, expected, jit=True)


def _check(case: Case, expected: dict[str, list[tuple[Any, ...]]], jit: bool) -> None:
    for seed in range(3):
        actual = case.streamed(seed, jit)
        assert set(actual) == set(expected), f"seed {seed}: partitions with matches differ"
        for key, rows in expected.items():
            got = actual[key]
            assert len(got) == len(rows), f"seed {seed}, {key}: {got} != {rows}"
            for want, have in zip(rows, got, strict=True):
                assert all(_same(w, h) for w, h in zip(want, have, strict=True)), (
                    f"seed {seed}, {key}: {have} != {want}"
                )
