"""The service configuration: defaults, validation, the documented example."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cep.compiler import compile_rules
from cep.parser import parse_text
from nfa.batch import StringPool
from nfa.reference import EngineConfig
from service.config import ConfigError, config_from_mapping, load_config
from service.rule_set import engine_kind

EXAMPLE = Path(__file__).parents[2] / "docs" / "service.example.yaml"


def test_documented_example_is_valid() -> None:
    config = load_config(EXAMPLE)
    assert config.guarantee == "at_least_once" and config.engine == "numba"
    assert config.rule_settings["card_testing"].cooldown == "10m"
    assert config.late_topic_for("txns") == "txns.late"


def test_defaults_fill_everything_but_inputs() -> None:
    config = config_from_mapping({"inputs": [{"topic": "t", "stream": "txns"}]})
    assert config.kafka.group_id == "cep" and config.checkpoints_kept == 3


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "inputs"),
        ({"inputs": [{"topic": "t", "stream": "s"}], "guarnatee": "x"}, "unknown option"),
        ({"inputs": [{"topic": "t", "stream": "s"}], "guarantee": "maybe"}, "guarantee"),
        ({"inputs": [{"topic": "t", "stream": "s"}], "kafka": {"boostrap": "x"}}, "unknown option"),
        (
            {"inputs": [{"topic": "t", "stream": "s"}], "rule_settings": {"r": {"shadw": True}}},
            "unknown option",
        ),
        ({"inputs": [{"topic": "t", "stream": "s"}], "bounds": {"max_run": 1}}, "unknown option"),
        (
            {"inputs": [{"topic": "t", "stream": "s"}], "bounds": {"max_runs_per_rule": -1}},
            "bounds.max_runs_per_rule",
        ),
        (
            {"inputs": [{"topic": "t", "stream": "s"}], "bounds": {"max_runs_per_key": 0}},
            "bounds.max_runs_per_key",
        ),
    ],
)
def test_mistakes_are_reported(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_mapping(data)


def test_bounds_reach_both_engines(tmp_path: Path) -> None:
    path = tmp_path / "service.yaml"
    path.write_text("inputs: [{topic: t, stream: txns}]\nbounds: {max_keys: 1000}\n")
    config = load_config(path, {"CEP__BOUNDS__MAX_RUNS_PER_RULE": "500"})
    text = (
        "stream txns key card_id time ts fields { card_id: string, amount: float, ts: timestamp }\n"
        "rule big from txns pattern a where a: amount > 500\n"
    )
    rules = compile_rules(parse_text(text, "t.cep"))
    want = EngineConfig(max_runs_per_key=10_000, max_runs_per_rule=500, max_keys=1000)
    for name in ("reference", "numba"):
        engine: Any = engine_kind(name, rules.schema, (), config.bounds)(
            rules.programs, StringPool()
        )
        assert engine.config == want, name
