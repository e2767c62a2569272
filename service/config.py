"""The daemon's configuration: a frozen, typed object read from `service.yaml`.

Every option has a default, so a config file only names what differs. Unknown keys are
errors (a typo must not silently fall back to a default).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """The service configuration is invalid; the message says what to change."""


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap: str = "127.0.0.1:9092"
    group_id: str = "cep"
    consumer: dict[str, Any] = field(default_factory=dict)  # librdkafka overrides
    producer: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InputConfig:
    topic: str
    stream: str


@dataclass(frozen=True)
class BatchConfig:
    max_messages: int = 5000
    max_wait_ms: int = 50


@dataclass(frozen=True)
class MetricsConfig:
    host: str = "127.0.0.1"
    port: int = 9464  # 0: do not serve metrics


@dataclass(frozen=True)
class RuleSettings:
    """Operational settings of one rule, kept out of the rule file on purpose: the same rule
    can be shadowed in one deployment and live in another."""

    cooldown: str | None = None  # e.g. "5m": suppress repeat alerts for the same key
    shadow: bool = False  # send alerts to the shadow topic instead of the rule's topic


@dataclass(frozen=True)
class ServiceConfig:
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    redis_url: str = "redis://127.0.0.1:6379/0"
    rules: tuple[str, ...] = ()  # rule files or folders; empty: the shipped library
    inputs: tuple[InputConfig, ...] = ()
    dead_letter_topic: str = "cep.dead-letter"
    late_topic: str = "{stream}.late"  # per stream; {stream} is replaced by its name
    max_message_bytes: int = 65_536
    batch: BatchConfig = field(default_factory=BatchConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    print_alerts: bool = False
    engine: str = "reference"  # "reference" (pure Python) or "numba" (the product engine)
    checkpoint_interval_ms: int = 1000  # how often state is checkpointed and offsets committed
    guarantee: str = "at_least_once"  # or "exactly_once": Kafka transactions
    instance_id: str = "0"  # stable per instance: names its transactional id (fencing on restart)
    checkpoints_kept: int = 3
    shadow_topic: str = "cep.shadow"
    rule_settings: dict[str, RuleSettings] = field(default_factory=dict)

    def late_topic_for(self, stream: str) -> str:
        return self.late_topic.replace("{stream}", stream)


def _build(cls: type[Any], data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(
            f"{where}: unknown option(s) {', '.join(unknown)}; known: {', '.join(known)}"
        )
    return cls(**data)


def config_from_mapping(data: dict[str, Any]) -> ServiceConfig:
    """Build and validate a config from plain data (a parsed YAML file)."""
    data = dict(data)
    nested = {"kafka": KafkaConfig, "batch": BatchConfig, "metrics": MetricsConfig}
    for key, cls in nested.items():
        if key in data:
            data[key] = _build(cls, data[key], key)
    if "rule_settings" in data:
        data["rule_settings"] = {
            str(name): _build(RuleSettings, value, f"rule_settings.{name}")
            for name, value in data["rule_settings"].items()
        }
    if "inputs" in data:
        data["inputs"] = tuple(_build(InputConfig, item, "inputs[]") for item in data["inputs"])
    if "rules" in data:
        rules = data["rules"]
        data["rules"] = (rules,) if isinstance(rules, str) else tuple(rules)
    config: ServiceConfig = _build(ServiceConfig, data, "config")
    if not config.inputs:
        raise ConfigError("config: `inputs` is empty; map at least one topic to a stream")
    if config.guarantee not in ("at_least_once", "exactly_once"):
        raise ConfigError(
            f"config: guarantee {config.guarantee!r} is not one of at_least_once, exactly_once"
        )
    if config.engine not in ("reference", "numba"):
        raise ConfigError(f"config: engine {config.engine!r} is not one of reference, numba")
    return config


def load_config(path: str | Path) -> ServiceConfig:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    return config_from_mapping(data)
