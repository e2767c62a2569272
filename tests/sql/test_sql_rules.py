"""SQL rules where DSL rules go: `.sql` files and YAML `sql:`, `cep check`, `cep test`,
`cep replay`, the mixed engine and the daemon's engine construction."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cep.loader import load_paths, load_text
from nfa.batch import StringPool, batch_from_records
from nfa.mixed import MixedEngine
from nfa.reference import ReferenceEngine
from nfa.results import EngineOutput
from service.cli import main
from service.partition import RuleSetIdentity, new_partition
from service.replay import replay
from service.rule_alerts import rule_alert
from service.rule_set import engine_kind
from service.ruletest import run_rule_tests

STREAMS = """\
stream txns
  key card_id
  time ts
  out_of_order 0s
  fields { event_id: string, card_id: string, amount: float, ts: timestamp }

rule dsl_big
  from txns
  pattern big
  where big: amount > 1000
  emit to "dsl.alerts" { amount: big.amount }
"""
SQL = """\
-- rule: sql_testing
-- title: Tiny amounts then a large one
-- version: 3
-- severity: high
-- labels: card, testing
-- emit_to: fraud.alerts
SELECT * FROM txns MATCH_RECOGNIZE (
  PARTITION BY card_id
  ORDER BY ts
  MEASURES count(S.*) AS smalls, B.amount AS amount
  PATTERN (S{2,} B) WITHIN INTERVAL '10' MINUTE
  DEFINE S AS S.amount < 600, B AS B.amount > 500
);

-- rule: sql_disabled
-- enabled: false
SELECT card_id, n * 2 AS doubled FROM txns MATCH_RECOGNIZE (
  PARTITION BY card_id
  MEASURES count(*) AS n
  PATTERN (B)
  DEFINE B AS B.amount > 500
)
"""
TESTS = """\
tests:
  - name: two tiny then a big one
    rule: sql_testing
    events:
      - {stream: txns, card_id: c1, amount: 1.0, ts: "2026-01-01T10:00:00Z"}
      - {stream: txns, card_id: c1, amount: 2.0, ts: "2026-01-01T10:01:00Z"}
      - {stream: txns, card_id: c1, amount: 900.0, ts: "2026-01-01T10:02:00Z"}
    expect:
      - {key: c1, fields: {smalls: 2, amount: 900.0}, events: [0, 1, 2]}
  - name: a disabled SQL rule is tested on its own
    rule: sql_disabled
    events:
      - {stream: txns, card_id: c1, amount: 900.0, ts: "2026-01-01T10:02:00Z"}
    expect:
      - {key: c1, fields: {card_id: c1, doubled: 2}}
"""
YAML = """\
rules:
  - name: yaml_sql
    severity: low
    emit_to: yaml.alerts
    sql: |
      SELECT * FROM txns MATCH_RECOGNIZE (
        PARTITION BY card_id ORDER BY ts
        MEASURES A.amount AS first_amount
        PATTERN (A NOT FOLLOWED BY C) WITHIN INTERVAL '5' MINUTE
        DEFINE A AS A.amount > 100, C AS C.amount < 1
      )
tests:
  - name: a big amount not followed by a tiny one
    rule: yaml_sql
    events:
      - {stream: txns, card_id: c9, amount: 150.0, ts: "2026-01-01T10:00:00Z"}
    expect:
      - {key: c9, fields: {first_amount: 150.0}}
"""


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    (tmp_path / "streams.cep").write_text(STREAMS)
    (tmp_path / "card.sql").write_text(SQL)
    (tmp_path / "card.tests.yaml").write_text(TESTS)
    (tmp_path / "more.yaml").write_text(YAML)
    return tmp_path


def test_loaded_rules_hold_both_kinds(rules_dir: Path) -> None:
    compiled = load_paths([rules_dir]).compile()
    # S and B overlap (600 > 500): sql_testing stays on the row-pattern engine; the other
    # two SQL rules are in the NFA subset and compile to programs after the DSL rule.
    assert [p.info.name for p in compiled.programs] == ["dsl_big", "sql_disabled", "yaml_sql"]
    assert [p.info.name for p in compiled.sql_programs] == ["sql_testing"]
    engines = {c.rule: c.engine for c in compiled.engines}
    assert engines == {"sql_testing": "row-pattern", "sql_disabled": "nfa", "yaml_sql": "nfa"}
    testing = next(p for p in compiled.sql_programs if p.info.name == "sql_testing")
    assert testing.info.version == 3 and testing.info.severity == "high"
    assert testing.info.labels == ("card", "testing") and testing.emit.topic == "fraud.alerts"
    assert testing.within_ms == 600_000
    assert compiled.rules[0].info.name == "dsl_big"  # NFA programs first


def test_cep_check_accepts(rules_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(rules_dir)]) == 0
    assert "ok:" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("broken", "where", "code", "word"),
    [
        ("FROM txns", "FROM txnx", "E231", "txnx"),
        ("PARTITION BY card_id\n  ORDER", "PARTITION BY amount\n  ORDER", "E232", "amount"),
        ("ORDER BY ts\n  MEASURES", "ORDER BY amount\n  MEASURES", "E233", "amount"),
        ("S.amount < 600", "S.amont < 600", "E212", "S.amont"),
        ("PATTERN (S{2,} B)", "PATTERN (S{2,} B", "E201", "'10'"),
        ("-- version: 3", "-- versio: 3", "E230", "-- versio"),
    ],
)
def test_cep_check_reports_sql_problems_with_position(
    rules_dir: Path,
    capsys: pytest.CaptureFixture[str],
    broken: str,
    where: str,
    code: str,
    word: str,
) -> None:
    text = SQL.replace(broken, where, 1)
    (rules_dir / "card.sql").write_text(text)
    assert main(["check", str(rules_dir)]) == 1
    err = capsys.readouterr().err
    head = next(line for line in err.splitlines() if f"error[{code}]" in line)
    file, line, column = head.split(":")[:3]
    assert file.endswith("card.sql")
    assert text.splitlines()[int(line) - 1][int(column) - 1 :].startswith(word)
    assert "^" in err


def test_yaml_sql_diagnostics_keep_file_positions() -> None:
    text = YAML.replace("A.amount > 100", "A.amount >> 100")
    with pytest.raises(Exception) as caught:
        load_text(text, "bad.yaml")
    (diagnostic,) = caught.value.diagnostics  # type: ignore[attr-defined]
    line = text.splitlines()[diagnostic.span.line - 1]
    assert ">>" in line and line[diagnostic.span.column - 1] == ">"


def test_yaml_sql_rejects_dsl_fields() -> None:
    text = YAML.replace("    severity: low\n", "    severity: low\n    pattern: |\n      a\n")
    with pytest.raises(Exception) as caught:
        load_text(text, "bad.yaml")
    assert "`pattern` is for DSL rules" in str(caught.value)


def test_sql_file_needs_a_header(tmp_path: Path) -> None:
    (tmp_path / "streams.cep").write_text(STREAMS)
    (tmp_path / "x.sql").write_text("SELECT * FROM txns MATCH_RECOGNIZE (PATTERN (A))\n")
    with pytest.raises(Exception, match="E230"):
        load_paths([tmp_path])


def test_cep_test_runs_sql_rule_tests(rules_dir: Path) -> None:
    results = run_rule_tests([rules_dir])
    assert [(r.name, r.passed, r.problems) for r in results] == [
        ("two tiny then a big one", True, []),
        ("a disabled SQL rule is tested on its own", True, []),
        ("a big amount not followed by a tiny one", True, []),
    ]
    assert main(["test", str(rules_dir)]) == 0


EVENTS = [
    {"event_id": "e1", "card_id": "c1", "amount": 1.0, "ts": "2026-01-01T10:00:00Z"},
    {"event_id": "e2", "card_id": "c1", "amount": 2.0, "ts": "2026-01-01T10:01:00Z"},
    {"event_id": "e3", "card_id": "c1", "amount": 1500.0, "ts": "2026-01-01T10:02:00Z"},
    {"event_id": "e4", "card_id": "c2", "amount": 0.5, "ts": "2026-01-01T10:03:00Z"},
]


@pytest.mark.parametrize("engine", ["reference", "numba"])
def test_cep_replay_runs_sql_rules(rules_dir: Path, tmp_path: Path, engine: str) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps({"stream": "txns", **e}) for e in EVENTS))
    if engine == "numba":  # no DSL rule: the SQL rules alone
        (rules_dir / "streams.cep").write_text(STREAMS.split("rule dsl_big")[0])
    report = replay([rules_dir], [events], engine)
    by_rule: dict[str, list[dict[str, Any]]] = {}
    for alert in report.alerts:
        by_rule.setdefault(alert["rule"], []).append(alert)
    (testing,) = by_rule["sql_testing"]
    assert testing["fields"] == {"smalls": 2, "amount": 1500.0}
    assert [e["id"] for e in testing["events"]] == ["e1", "e2", "e3"]
    assert [e["stage"] for e in testing["events"]] == ["S", "S", "B"]
    assert testing["version"] == 3 and testing["severity"] == "high"
    (yaml_alert,) = by_rule["yaml_sql"]  # e3 is not followed by a tiny amount of c1
    assert yaml_alert["time"] == testing["end"] + 5 * 60_000
    assert "sql_disabled" in by_rule  # replay runs disabled rules too, as for DSL rules
    if engine == "reference":
        assert [a["fields"] for a in by_rule["dsl_big"]] == [{"amount": 1500.0}]


def test_mixed_engine_numbers_rules_and_survives_a_restore(rules_dir: Path) -> None:
    compiled = load_paths([rules_dir]).compile()
    schema, rules = compiled.schema, compiled.rules
    pool, keys = StringPool(), StringPool()
    engine = MixedEngine.create(compiled.programs, compiled.sql_programs, pool, ReferenceEngine)
    out = EngineOutput()
    records = [("txns", e | {"ts": 1_767_261_600_000 + i * 60_000}) for i, e in enumerate(EVENTS)]
    for i, record in enumerate(records):
        out.extend(engine.process(batch_from_records(schema, [record], pool, keys, i)))
        engine = MixedEngine.restore(
            compiled.programs,
            compiled.sql_programs,
            pool,
            engine.snapshot(),
            ReferenceEngine.restore,
        )
    out.extend(engine.finish())
    alerts = [rule_alert(m, rules[m.rule], keys.value(m.key), str) for m in out.matches]
    assert sorted(a["rule"] for a in alerts) == [
        "dsl_big",
        "sql_disabled",
        "sql_testing",
        "yaml_sql",
    ]
    assert {a["rule"]: a["fields"] for a in alerts}["sql_disabled"] == {
        "card_id": "c1",
        "doubled": 2,
    }


@pytest.mark.parametrize("engine", ["reference", "numba"])
def test_daemon_builds_and_restores_a_mixed_engine(rules_dir: Path, engine: str) -> None:
    """SQL rules run on kernels with the numba engine, in Python with the reference one;
    either way the restored engine holds the key's retained row."""
    compiled = load_paths([rules_dir]).compile()
    kind = engine_kind(engine, compiled.schema, compiled.sql_programs)
    inputs = [("txns-topic", "txns")]
    ids = RuleSetIdentity.of(compiled.programs, compiled.sql_programs)
    state = new_partition(0, compiled.schema, compiled.programs, inputs, 1 << 20, kind, ids)
    assert isinstance(state.engine, MixedEngine)
    record = ("txns", EVENTS[0] | {"ts": 1_767_261_600_000})
    state.engine.process(batch_from_records(compiled.schema, [record], state.pool, state.keys))
    again = new_partition(
        0, compiled.schema, compiled.programs, inputs, 1 << 20, kind, ids, state.encode()
    )
    assert isinstance(again.engine, MixedEngine) and again.engine.sql is not None
    fast, slow = again.engine.sql.parts
    if engine == "reference":
        assert fast is None and slow is not None and len(slow.states) == 1
    else:
        assert slow is None and fast is not None and fast.live_rows() == 1
    plain = engine_kind("reference", compiled.schema)
    assert not isinstance(plain(compiled.programs, StringPool()), MixedEngine)


@pytest.mark.parametrize(
    ("pattern", "within", "warned"),
    [
        ("A B+ C", "", "B+"),
        ("A (B | C*) D", "", "C*"),
        ("A B{2,} C", "WITHIN INTERVAL '5' MINUTE", None),
        ("A B{2,5} C", "", None),
    ],
)
def test_an_unbounded_quantifier_without_within_is_warned(
    pattern: str, within: str, warned: str | None
) -> None:
    query = (
        "SELECT * FROM txns MATCH_RECOGNIZE (\n"
        "  PARTITION BY card_id ORDER BY ts MEASURES count(*) AS n\n"
        f"  PATTERN ({pattern}) {within}\n"
        "  DEFINE A AS amount > 1, B AS amount > 2, C AS amount > 3, D AS amount > 4\n)"
    )
    text = (
        "streams: |\n  stream txns key card_id time ts\n"
        "    fields { card_id: string, amount: float, ts: timestamp }\n"
        "rules:\n  - name: r\n    sql: |\n"
        + "".join(f"      {line}\n" for line in query.split("\n"))
    )
    rules = load_text(text, "r.yaml").compile()
    found = [w for w in rules.warnings if w.code == "W242"]
    if warned is None:
        assert found == []
    else:
        (warning,) = found
        line = text.split("\n")[warning.span.line - 1]
        assert warning.span.line == 9 and line[warning.span.column - 1 :].startswith(warned)
