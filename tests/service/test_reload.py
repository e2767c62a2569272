"""Hot reload without Kafka: change detection, validation, audit records, and restoring a
partition group's checkpoint into another rule set (cooldowns by rule name)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from cep.compiler import CompiledRules
from cep.loader import load_paths
from nfa.engine import Engine
from nfa.reference import ReferenceEngine
from service.partition import EngineKindOf, RuleSetIdentity, new_partition
from service.reload import RuleDeployer, digest_of, rule_changes

STREAMS = """
stream txns key card_id time ts
  fields { card_id: string, amount: float, ts: timestamp }
"""
RULE = """
rule {name}
  version {version}
  severity {severity}
  from txns
  pattern small{{3,}} consecutive next big
  where small: amount < {limit}
        big: amount > 500.00
  within 10m
"""


def _write(folder: Path, **rules: dict[str, Any]) -> None:
    for old in folder.glob("*.cep"):
        if old.name != "streams.cep":
            old.unlink()
    (folder / "streams.cep").write_text(STREAMS)
    for name, values in rules.items():
        text = RULE.format(
            name=name,
            version=values.get("version", 1),
            severity=values.get("severity", "high"),
            limit=values.get("limit", "5.00"),
        )
        (folder / f"{name}.cep").write_text(text + values.get("extra", ""))


def _compile(folder: Path) -> CompiledRules:
    return load_paths([folder]).compile()


class Recorder:
    def __init__(self) -> None:
        self.failures = 0
        self.records: list[dict[str, Any]] = []
        self.built: list[CompiledRules] = []

    def deployer(self, folder: Path, interval_s: float = 0.0, **kw: Any) -> RuleDeployer:
        return RuleDeployer(
            [folder],
            _compile(folder),
            self.built.append,
            self.on_failure,
            self.records.append,
            interval_s,
            **kw,
        )

    def on_failure(self) -> None:
        self.failures += 1


def test_rule_changes_name_each_kind_of_change(tmp_path: Path) -> None:
    _write(tmp_path, a={}, b={}, c={}, d={})
    old = _compile(tmp_path)
    _write(
        tmp_path,
        a={"limit": "4.00", "version": 2},  # what it matches: changed
        b={"severity": "low", "version": 2},  # metadata only: updated
        c={},  # unchanged: not listed
        e={},  # added (d removed)
    )
    new = _compile(tmp_path)
    changes = {c.rule: (c.outcome, c.old_version, c.new_version) for c in rule_changes(old, new)}
    assert changes == {
        "a": ("changed", 1, 2),
        "b": ("updated", 1, 2),
        "d": ("removed", 1, None),
        "e": ("added", None, 1),
    }


def test_a_valid_change_becomes_one_candidate_with_built_kernels(tmp_path: Path) -> None:
    _write(tmp_path, a={})
    recorder = Recorder()
    deployer = recorder.deployer(tmp_path)
    assert deployer.check() is None  # nothing changed
    _write(tmp_path, a={"limit": "3.00", "version": 2})
    candidate = deployer.check()
    assert candidate is not None
    assert [(c.rule, c.outcome) for c in candidate.changes] == [("a", "changed")]
    assert recorder.built == [candidate.rules]
    assert deployer.take() is candidate
    assert deployer.take() is None
    records = deployer.applied(candidate, {"a": 7})
    assert records == recorder.records
    (record,) = records
    assert record["rule"] == "a"
    assert (record["old_version"], record["new_version"]) == (1, 2)
    assert (record["outcome"], record["partial_matches"]) == ("changed", "dropped")
    assert record["dropped_partial_matches"] == 7
    assert deployer.status.as_json(deployer.current)["rules"] == {
        "a": {"version": 2, "enabled": True}
    }


def test_a_changed_rule_without_a_new_version_is_flagged(tmp_path: Path) -> None:
    _write(tmp_path, a={})
    deployer = Recorder().deployer(tmp_path)
    _write(tmp_path, a={"limit": "3.00"})
    candidate = deployer.check()
    assert candidate is not None
    (record,) = deployer.applied(candidate, {})
    assert record["warning"] == "the rule changed but its version did not"


def test_a_broken_rule_is_rejected_with_its_diagnostics(tmp_path: Path) -> None:
    _write(tmp_path, a={}, b={})
    recorder = Recorder()
    deployer = recorder.deployer(tmp_path)
    before = deployer.current
    (tmp_path / "b.cep").write_text(RULE.format(name="b", version=2, severity="high", limit="x"))
    (tmp_path / "c.cep").write_text("rule c from txns pattern q where q: amount >< 1\n")
    assert deployer.check() is None
    assert deployer.take() is None
    assert deployer.current is before
    assert recorder.failures == 1 and recorder.built == []
    (record,) = recorder.records
    assert record["outcome"] == "rejected"
    # every diagnostic at once, with file, line and a caret
    assert "b.cep:7:25:" in record["diagnostics"] and "c.cep:1:45:" in record["diagnostics"]
    assert "^" in record["diagnostics"]
    assert deployer.status.last_attempt == record
    # the same broken files are not reported again; fixing them deploys
    assert deployer.check() is None and recorder.failures == 1
    (tmp_path / "c.cep").unlink()
    _write(tmp_path, a={}, b={"version": 2, "limit": "6.00"})
    candidate = deployer.check()
    assert candidate is not None
    assert [(c.rule, c.outcome) for c in candidate.changes] == [("b", "changed")]


def test_changed_streams_are_rejected(tmp_path: Path) -> None:
    _write(tmp_path, a={})
    recorder = Recorder()
    deployer = recorder.deployer(tmp_path)
    (tmp_path / "streams.cep").write_text(STREAMS.replace("ts: timestamp", "ts: timestamp, x: int"))
    assert deployer.check() is None
    assert recorder.records[-1]["reason"] == "the stream declarations changed"


def test_sighup_wakes_the_watcher(tmp_path: Path) -> None:
    _write(tmp_path, a={})
    wake = threading.Event()
    deployer = Recorder().deployer(tmp_path, interval_s=0.0, wake=wake).start()
    try:
        _write(tmp_path, a={"version": 2, "severity": "low"})
        time.sleep(0.3)
        assert deployer.take() is None  # interval 0: only SIGHUP looks
        wake.set()
        deadline = time.monotonic() + 10
        candidate = None
        while candidate is None and time.monotonic() < deadline:
            candidate = deployer.take()
            time.sleep(0.05)
        assert candidate is not None
        assert [(c.rule, c.outcome) for c in candidate.changes] == [("a", "updated")]
    finally:
        deployer.close()


def test_digest_follows_contents(tmp_path: Path) -> None:
    _write(tmp_path, a={})
    first = digest_of([tmp_path])
    assert digest_of([tmp_path]) == first
    _write(tmp_path, a={"limit": "1.00"})
    assert digest_of([tmp_path]) != first


@pytest.mark.parametrize("engine_class", [Engine, ReferenceEngine], ids=["numba", "reference"])
def test_partition_checkpoint_restored_into_other_rules(tmp_path: Path, engine_class: type) -> None:
    from nfa.batch import batch_from_records

    _write(tmp_path, a={}, b={})
    old = _compile(tmp_path)
    kind = EngineKindOf(
        lambda programs, pool: engine_class(programs, pool),
        lambda programs, pool, data, keep=None: engine_class.restore(
            programs, pool, data, keep=keep
        ),
    )
    old_ids = RuleSetIdentity.of(old.programs, ())
    state = new_partition(0, old.schema, old.programs, [("t", "txns")], 1000, kind, old_ids)
    rows = [("txns", {"card_id": "c1", "amount": 1.0, "ts": 1000 * i}) for i in range(4)]
    state.engine.process(batch_from_records(old.schema, rows, state.pool, state.keys))
    state.cooldown_until = {(0, 0): 99, (1, 0): 77}
    data = state.encode()

    _write(tmp_path, b={}, c={})  # a removed, b unchanged (now first), c added
    new = _compile(tmp_path)
    new_ids = RuleSetIdentity.of(new.programs, ())
    moved = new_partition(0, new.schema, new.programs, [("t", "txns")], 1000, kind, new_ids, data)
    assert moved.cooldown_until == {(0, 0): 77}  # b's cooldown, under b's new index
    assert moved.rules == new_ids
    assert moved.keys.state() == state.keys.state()
    from service.collectors import live_partial_matches

    assert live_partial_matches(state.engine, 2) == [4, 4]
    assert live_partial_matches(moved.engine, 2) == [4, 0]


def test_sighup_sets_the_reload_event() -> None:
    import os
    import signal

    from service.runner import stop_on_signals

    reload = threading.Event()
    with stop_on_signals(reload) as stop:
        os.kill(os.getpid(), signal.SIGHUP)
        deadline = time.monotonic() + 5
        while not reload.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert reload.is_set() and not stop.is_set()
    assert signal.getsignal(signal.SIGHUP) is not None  # the previous handler is back


SQL_RULE = """-- rule: sql_q
SELECT * FROM txns MATCH_RECOGNIZE (
  PARTITION BY card_id ORDER BY ts
  MEASURES count(S.*) AS tests
  PATTERN (S{3,} (B | C)) WITHIN INTERVAL '10' MINUTE
  DEFINE S AS S.amount < 5.00, B AS B.amount > 500.00, C AS C.amount > 400.00
);
"""


def test_rules_gaining_and_losing_sql_rules_keep_what_continues(tmp_path: Path) -> None:
    """Plain engine -> mixed (first SQL rule) -> SQL only -> plain again."""
    from nfa.batch import batch_from_records
    from service.collectors import live_partial_matches
    from service.rule_set import engine_kind

    def partition(snapshot: bytes | None = None) -> Any:
        rules = _compile(tmp_path)
        programs = [p for p in rules.programs if p.info.enabled]
        sql = [p for p in rules.sql_programs if p.info.enabled]
        kind = engine_kind("numba", rules.schema, sql)
        ids = RuleSetIdentity.of(programs, sql)
        return new_partition(0, rules.schema, programs, [("t", "txns")], 1000, kind, ids, snapshot)

    def feed(state: Any, start: int) -> None:
        rows = [("txns", {"card_id": "c1", "amount": 1.0, "ts": start + i}) for i in range(2)]
        schema = _compile(tmp_path).schema
        state.engine.process(batch_from_records(schema, rows, state.pool, state.keys))

    _write(tmp_path, a={})
    first = partition()
    feed(first, 0)
    assert live_partial_matches(first.engine, 1) == [2]

    (tmp_path / "q.sql").write_text(SQL_RULE)
    second = partition(first.encode())
    assert second.rules.sql and live_partial_matches(second.engine, 1) == [2]
    feed(second, 10)
    assert live_partial_matches(second.engine, 1) == [4]
    sql_rows = second.engine.sql.live_keys()
    assert sql_rows == 1  # the SQL rule saw the events after the swap only

    (tmp_path / "a.cep").unlink()
    third = partition(second.encode())
    assert third.engine.cep is None and third.engine.sql.live_keys() == sql_rows

    _write(tmp_path, a={})
    (tmp_path / "q.sql").unlink()
    fourth = partition(third.encode())
    assert live_partial_matches(fourth.engine, 1) == [0]
