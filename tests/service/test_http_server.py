"""The operations HTTP server and what answers it, without Kafka: a fake backend for the
routes and the token, a fake service (real engines) for partial matches and gauges."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter

from cep.compiler import CompiledRules, compile_rules
from cep.parser import parse_text
from nfa.batch import StringPool, batch_from_records
from nfa.engine import Engine
from nfa.reference import ReferenceEngine
from service.collectors import (
    LoopCalls,
    PartialRun,
    StateCollector,
    StateSample,
    live_partial_matches,
    partial_runs,
)
from service.config import config_from_mapping
from service.http import HttpError, OpsServer, ServiceBackend
from service.logs import Masker
from service.metrics import Metrics
from service.outputs import OFFSET_BITS

RULES = """
stream txns key card_id time ts out_of_order 0s
  fields { card_id: string, merchant: string, amount: float, ts: timestamp }
rule card_testing
  from txns
  pattern small{3,} consecutive next big
  where small: amount < 5.00
        big: amount > 500.00
  within 10m skip past last
  emit to "alerts" { tests: count(small), total: sum(small.amount) }
rule off
  enabled false
  from txns
  pattern big
  where big: amount > 1.0
  emit to "alerts" {}
"""
T0 = 1_767_225_600_000


def _rules() -> CompiledRules:
    return compile_rules(parse_text(RULES, "r.cep"))


# ---------------------------------------------------------------------- routes and token
@dataclass
class FakeBackend:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    ready: bool = True
    seen: list[tuple[str, str]] = field(default_factory=list)

    def readiness(self) -> tuple[bool, dict[str, object]]:
        return self.ready, {"phase": "running"}

    def rules(self) -> list[dict[str, object]]:
        return [{"name": "card_testing", "version": 2}]

    def partial_matches(self, rule: str, key: str) -> dict[str, object]:
        self.seen.append((rule, key))
        if rule == "sql_rule":
            raise HttpError(501, "a SQL rule")
        if rule == "broken":
            raise RuntimeError("boom")
        return {"rule": rule, "key": key, "partial_matches": []}


@pytest.fixture
def server() -> Iterator[tuple[OpsServer, FakeBackend]]:
    backend = FakeBackend()
    Counter("cep_test_things", "Things", registry=backend.registry).inc(3)
    ops = OpsServer(backend, "127.0.0.1", 0, token="s3cret").start()
    yield ops, backend
    ops.close()


def get(ops: OpsServer, path: str, token: str | None = "s3cret") -> tuple[int, str, Any]:
    host, port = ops.address
    request = urllib.request.Request(f"http://{host}:{port}{path}")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read().decode()
            return response.status, response.headers["Content-Type"], body
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def test_healthz_needs_no_token_and_everything_else_does(
    server: tuple[OpsServer, FakeBackend],
) -> None:
    ops, _ = server
    assert get(ops, "/healthz", token=None)[0] == 200
    for path in ("/readyz", "/rules", "/metrics", "/rules/r/keys/k/partial-matches"):
        status, _, body = get(ops, path, token=None)
        assert status == 401 and "token" in json.loads(body)["error"]
        assert get(ops, path, token="wrong")[0] == 401


def test_routes(server: tuple[OpsServer, FakeBackend]) -> None:
    ops, backend = server
    assert get(ops, "/readyz") == (200, "application/json", '{"ready": true, "phase": "running"}')
    backend.ready = False
    assert get(ops, "/readyz")[0] == 503
    status, _, body = get(ops, "/rules")
    assert status == 200 and json.loads(body)["rules"][0]["version"] == 2
    status, content_type, body = get(ops, "/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    assert "cep_test_things_total 3.0" in body
    assert get(ops, "/nope")[0] == 404


def test_partial_match_path_decodes_segments_and_maps_errors(
    server: tuple[OpsServer, FakeBackend],
) -> None:
    ops, backend = server
    status, _, body = get(ops, "/rules/card_testing/keys/a%2Fb%20c/partial-matches")
    assert status == 200 and json.loads(body)["key"] == "a/b c"
    assert backend.seen == [("card_testing", "a/b c")]
    assert get(ops, "/rules/sql_rule/keys/k/partial-matches")[0] == 501
    status, _, body = get(ops, "/rules/broken/keys/k/partial-matches")
    assert status == 500 and "boom" not in body


def test_no_token_configured_means_open() -> None:
    ops = OpsServer(FakeBackend(), "127.0.0.1", 0).start()
    try:
        assert get(ops, "/rules", token=None)[0] == 200
    finally:
        ops.close()


# ---------------------------------------------------------------------- engines
def _feed(engine_cls: type[Any], rules: CompiledRules) -> tuple[Any, StringPool, StringPool]:
    pool, keys = StringPool(), StringPool()
    amounts = {"card-0042": [1.0, 2.0], "c2": [1.0, 2.0, 3.0, 4.0], "c3": [1.0, 900.0]}
    timed = sorted(  # distinct times: with `out_of_order 0s` a tie would be late
        (T0 + 1000 * i + k, card, a)
        for k, (card, values) in enumerate(amounts.items())
        for i, a in enumerate(values)
    )
    rows = [
        ("txns", {"card_id": card, "merchant": f"m{(ts - T0) // 1000}", "amount": a, "ts": ts})
        for ts, card, a in timed
    ]
    batch = batch_from_records(rules.schema, rows, pool, keys)
    engine = engine_cls([p for p in rules.programs if p.info.enabled], pool)
    engine.process(batch)
    return engine, pool, keys


@pytest.mark.parametrize("engine_cls", [ReferenceEngine, Engine])
def test_partial_runs_of_one_key(engine_cls: type[Any]) -> None:
    rules = _rules()
    engine, _, keys = _feed(engine_cls, rules)
    key = keys.lookup("card-0042")
    assert key is not None
    runs = partial_runs(engine, 0, key)
    reference, _, ref_keys = _feed(ReferenceEngine, rules)
    kept = {c for r in runs for e in r.events for c in (e.kept or range(len(e.values)))}
    want = partial_runs(reference, 0, ref_keys.lookup("card-0042") or 0)
    assert _known(runs, kept) == _known(want, kept)
    if engine_cls is Engine:  # it keeps the columns that outputs read (nfa.kernel_layout)
        amount = rules.schema.columns.index(rules.schema.column("txns", "amount"))
        assert all(e.kept is not None and amount in e.kept for r in runs for e in r.events)
    longest = max(runs, key=lambda r: len(r.events))
    assert longest.start == T0 and [e.ts for e in longest.events] == [T0, T0 + 1000]
    assert rules.programs[0].state_names[longest.state]
    assert partial_runs(engine, 0, 10_000) == []  # a key the engine never saw
    counts = live_partial_matches(engine, len(rules.programs))
    assert counts == live_partial_matches(reference, len(rules.programs)) and counts[0] > 0


def _known(runs: list[PartialRun], kept: set[int]) -> list[tuple[Any, ...]]:
    """The runs with only the values of columns in `kept`."""
    return [
        (r.state, r.start, [(e.stage, e.seq, e.ts, [e.values[c] for c in kept]) for e in r.events])
        for r in runs
    ]


# ---------------------------------------------------------------------- the service backend
def _service(engine_cls: type[Any] = ReferenceEngine) -> tuple[ServiceBackend, Any]:
    rules = _rules()
    engine, pool, keys = _feed(engine_cls, rules)
    state = SimpleNamespace(engine=engine, pool=pool, keys=keys, dirty=False)
    enabled = [p for p in rules.programs if p.info.enabled]
    service = SimpleNamespace(
        programs=enabled,
        partitions={3: state},
        topics=["txns-topic"],
        schema=rules.schema,
        consumer=SimpleNamespace(),  # no position(): lag is left out
    )
    config = config_from_mapping(
        {
            "inputs": [{"topic": "txns-topic", "stream": "txns"}],
            "rule_settings": {"card_testing": {"cooldown": "10m", "shadow": True}},
            "batch": {"max_messages": 10},
        }
    )
    masker = Masker({"txns": ["card_id"]})
    backend = ServiceBackend(config, rules, CollectorRegistry(), LoopCalls(), masker)
    backend.attach(service)  # type: ignore[arg-type]
    return backend, service


def test_partial_matches_document_is_masked() -> None:
    backend, _ = _service()
    document = backend.partial_matches("card_testing", "card-0042")
    assert document["key"] == "****0042" and document["version"] == 1
    matches: list[dict[str, Any]] = document["partial_matches"]  # type: ignore[assignment]
    longest = max(matches, key=lambda m: len(m["events"]))
    assert longest["partition"] == 3 and longest["start"] == T0
    assert longest["window_end"] == T0 + 600_000 and longest["start_iso"].startswith("2026-01-01")
    first = longest["events"][0]
    assert first["stage"] == "small" and first["id"].startswith("txns-topic/3/")
    assert first["fields"] == {"card_id": "****0042", "merchant": "m0", "amount": 1.0, "ts": T0}
    assert backend.partial_matches("card_testing", "unknown")["partial_matches"] == []


def test_partial_matches_errors() -> None:
    backend, service = _service()
    for rule in ("nope", "off"):  # unknown, disabled
        with pytest.raises(HttpError) as missing:
            backend.partial_matches(rule, "k")
        assert missing.value.status == 404
    service.partitions[3].engine = object()  # an engine whose state cannot be read
    with pytest.raises(HttpError) as unsupported:
        backend.partial_matches("card_testing", "card-0042")
    assert unsupported.value.status == 501 and "engine: reference" in unsupported.value.message
    backend.detach()
    with pytest.raises(HttpError) as stopping:
        backend.partial_matches("card_testing", "k")
    assert stopping.value.status == 503


def test_event_ids_decode_the_input_topic_and_offset() -> None:
    backend, service = _service()
    service.topics = ["a", "txns-topic"]
    engine = service.partitions[3].engine
    for state in engine.states.values():
        for run in state.runs:
            run.taken = tuple(
                (stage, type(e)((1 << OFFSET_BITS) | 7, e.order, e.key, e.ts, e.stream, e.values))
                for stage, e in run.taken
            )
    document = backend.partial_matches("card_testing", "c2")
    ids = {e["id"] for m in document["partial_matches"] for e in m["events"]}  # type: ignore[attr-defined]
    assert ids == {"txns-topic/3/7"}


def test_rules_document() -> None:
    backend, _ = _service()
    rules = {r["name"]: r for r in backend.rules()}
    assert rules["card_testing"]["shadow"] is True and rules["card_testing"]["cooldown"] == "10m"
    assert rules["card_testing"]["emit_topic"] == "alerts"
    assert rules["card_testing"]["streams"] == ["txns"]
    assert rules["off"]["shadow"] is False and rules["off"]["cooldown"] is None
    assert rules["off"]["enabled"] is False and rules["card_testing"]["enabled"] is True


def test_readiness_follows_the_loop() -> None:
    backend, service = _service()
    assert backend.readiness()[0] is False  # attached, but no iteration yet
    backend.iteration(3)
    ready, details = backend.readiness()
    assert ready and details["partitions"] == [3] and details["caught_up"] is True
    backend.iteration(10)  # a full batch: more is waiting
    ready, details = backend.readiness()
    assert not ready and details["caught_up"] is False
    service.partitions = {}
    backend.iteration(0)
    assert backend.readiness()[0] is False
    backend.detach()
    assert backend.readiness() == (False, {"phase": "stopping"})


def test_state_gauges_at_scrape_time() -> None:
    backend, _ = _service()
    registry = CollectorRegistry()
    registry.register(StateCollector(backend.sample))
    assert (registry.get_sample_value("cep_partial_matches", {"rule": "card_testing"}) or 0) > 0
    lag = registry.get_sample_value(
        "cep_watermark_lag_seconds", {"stream": "txns", "partition": "3"}
    )
    assert lag is not None and lag > 0
    empty = CollectorRegistry()
    empty.register(StateCollector(lambda: None))
    assert empty.get_sample_value("cep_partial_matches", {"rule": "card_testing"}) is None


def test_consumer_lag_from_positions_and_cached_high_watermarks() -> None:
    backend, service = _service()
    tp = SimpleNamespace(topic="txns-topic", partition=3, offset=40)
    unknown = SimpleNamespace(topic="txns-topic", partition=4, offset=-1001)
    service.consumer = SimpleNamespace(
        assignment=lambda: [tp, unknown],
        position=lambda tps: tps,
        get_watermark_offsets=lambda tp, cached: (0, 100),
    )
    sample = backend.sample()
    assert isinstance(sample, StateSample)
    assert sample.consumer_lag == {("txns-topic", 3): 60}


# ---------------------------------------------------------------------- the loop thread
def test_loop_calls_run_on_the_loop_thread() -> None:
    calls, stop = LoopCalls(), threading.Event()
    assert calls.call(threading.current_thread, 1) is threading.current_thread()  # inline

    def loop() -> None:
        calls.bind()
        while not stop.is_set():
            calls.run_pending()
            time.sleep(0.01)
        calls.unbind()

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        time.sleep(0.05)
        assert calls.call(threading.current_thread, 5) is thread
        with pytest.raises(ValueError, match="bad"):
            calls.call(lambda: int("bad"), 5)
    finally:
        stop.set()
        thread.join()


def test_loop_calls_time_out_when_the_loop_is_busy() -> None:
    calls = LoopCalls()
    thread = threading.Thread(target=calls.bind)
    thread.start()
    thread.join()  # bound to a thread that never answers
    with pytest.raises(TimeoutError, match="did not answer"):
        calls.call(lambda: 1, 0.05)
    calls.unbind()
    assert calls.call(lambda: 2, 0.05) == 2


def test_dashboard_shows_every_metric() -> None:
    registry = CollectorRegistry()
    Metrics.create(registry)
    registry.register(StateCollector(lambda: None))
    names = {family.name for family in registry.collect()}
    dashboard = json.loads(
        (Path(__file__).parents[2] / "docs" / "grafana-dashboard.json").read_text()
    )
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    assert {name for name in names if name not in exprs} == set()
