"""The service configuration: defaults, validation, the documented example."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import ConfigError, config_from_mapping, load_config

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
    ],
)
def test_mistakes_are_reported(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_mapping(data)
