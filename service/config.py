"""The daemon's configuration: a frozen, typed object read from `service.yaml`.

Every option has a default, so a config file only names what differs. Unknown keys are
errors (a typo must not silently fall back to a default). Environment variables named
`CEP__SECTION__OPTION` override the file (see `apply_env_overrides`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

ENV_PREFIX = "CEP__"
# librdkafka settings are dotted; in these dicts an `_` of a variable name stands for a `.`.
_DOTTED = {("kafka", "consumer"), ("kafka", "producer")}


class ConfigError(ValueError):
    """The service configuration is invalid; the message says what to change."""


_PROTOCOLS = ("plaintext", "ssl", "sasl_plaintext", "sasl_ssl")


@dataclass(frozen=True)
class KafkaSecurity:
    """TLS and SASL settings shared by the consumer and the producer, under readable names;
    `librdkafka()` maps them to the client's keys. Anything else: `kafka.consumer`/`producer`."""

    protocol: str | None = None  # plaintext, ssl, sasl_plaintext, sasl_ssl
    sasl_mechanism: str | None = None  # PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, ...
    username: str | None = None
    password: str | None = None
    ca_location: str | None = None  # CA bundle (PEM) that signed the brokers' certificates
    certificate_location: str | None = None  # client certificate (PEM), for mutual TLS
    key_location: str | None = None  # client private key (PEM)
    key_password: str | None = None
    verify_hostname: bool = True  # ssl.endpoint.identification.algorithm https (or none)

    def librdkafka(self) -> dict[str, str]:
        """The librdkafka settings these options stand for (only those that are set)."""
        names = {
            "protocol": "security.protocol",
            "sasl_mechanism": "sasl.mechanism",
            "username": "sasl.username",
            "password": "sasl.password",
            "ca_location": "ssl.ca.location",
            "certificate_location": "ssl.certificate.location",
            "key_location": "ssl.key.location",
            "key_password": "ssl.key.password",
        }
        out = {key: str(getattr(self, name)) for name, key in names.items()}
        out = {key: value for key, value in out.items() if value != "None"}
        if not self.verify_hostname:
            out["ssl.endpoint.identification.algorithm"] = "none"
        return out

    def validate(self) -> None:
        protocol = (self.protocol or "plaintext").lower()
        if protocol not in _PROTOCOLS:
            raise ConfigError(
                f"kafka.security.protocol {self.protocol!r} is not one of {', '.join(_PROTOCOLS)}"
            )
        if (self.sasl_mechanism or self.username) and not protocol.startswith("sasl_"):
            raise ConfigError(
                "kafka.security: SASL settings need protocol sasl_ssl (or sasl_plaintext)"
            )


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap: str = "127.0.0.1:9092"
    group_id: str = "cep"
    consumer: dict[str, Any] = field(default_factory=dict)  # librdkafka overrides
    producer: dict[str, Any] = field(default_factory=dict)
    security: KafkaSecurity = field(default_factory=KafkaSecurity)  # both clients


@dataclass(frozen=True)
class RedisConfig:
    """Credentials and TLS for `redis_url` (which may itself hold `:password@`); TLS needs
    a `rediss://` URL. Settings here win over the URL's, so a secret can come from the
    environment (`CEP__REDIS__PASSWORD`) while the URL stays in the file."""

    username: str | None = None
    password: str | None = None
    ca_location: str | None = None  # CA bundle (PEM) of the server's certificate
    certificate_location: str | None = None  # client certificate, for mutual TLS
    key_location: str | None = None
    verify_hostname: bool = True

    def connection_kwargs(self, url: str) -> dict[str, Any]:
        """Keyword arguments for `redis.Redis.from_url(url, **kwargs)`."""
        out: dict[str, Any] = {}
        if self.username is not None:
            out["username"] = self.username
        if self.password is not None:
            out["password"] = self.password
        tls: dict[str, Any] = {
            "ssl_ca_certs": self.ca_location,
            "ssl_certfile": self.certificate_location,
            "ssl_keyfile": self.key_location,
        }
        tls = {k: v for k, v in tls.items() if v is not None}
        if not self.verify_hostname:
            tls["ssl_check_hostname"] = False
        if tls and not url.startswith("rediss://"):
            raise ConfigError(
                "redis: TLS settings need a rediss:// URL; change redis_url to rediss://..."
            )
        if url.startswith("rediss://"):
            tls.setdefault("ssl_check_hostname", True)
            tls["ssl_cert_reqs"] = "required"
        return out | tls


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
    """The older spelling of `http.host`/`http.port`; `http` wins where it is set."""

    host: str = "127.0.0.1"
    port: int = 9464  # 0: do not serve metrics


@dataclass(frozen=True)
class HttpConfig:
    """The operations server: /metrics, /healthz, /readyz, /rules, partial matches."""

    host: str | None = None  # default: metrics.host (127.0.0.1)
    port: int | None = None  # default: metrics.port (9464); 0: no server
    token: str | None = None  # bearer token required on every path but /healthz


@dataclass(frozen=True)
class LogConfig:
    format: str = "text"  # or "json": one JSON object per line
    level: str = "INFO"


@dataclass(frozen=True)
class EngineBounds:
    """Bounds on the matching state of each partition group's engine (`EngineConfig` of
    `nfa.reference`; the policies are described in `nfa.reference_bounds`). 0: unbounded."""

    max_runs_per_key: int = 10_000  # per key and rule; beyond it the oldest are dropped
    max_runs_per_rule: int = 0  # per rule over all keys; beyond it the oldest are dropped
    max_keys: int = 0  # keys holding partial matches; the least recently active are evicted
    max_buffered_events: int = 0  # events waiting for the watermark; the oldest are dropped
    # string and key pools: at a checkpoint, free the entries no state refers to once the
    # pool holds this many and twice as many as after its last compaction (0: never)
    compact_pools_at: int = 10_000

    def validate(self) -> None:
        names = ("max_runs_per_key", "max_runs_per_rule", "max_keys", "max_buffered_events")
        for name in (*names, "compact_pools_at"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"bounds.{name}: expected a whole number >= 0, got {value!r}")
        if self.max_runs_per_key < 1:
            raise ConfigError("bounds.max_runs_per_key: must be at least 1 (it has no 0)")


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
    # how often the rule files are looked at for a hot reload (SIGHUP: at once); 0: only SIGHUP
    rules_watch_interval_ms: int = 5000
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
    http: HttpConfig = field(default_factory=HttpConfig)
    log: LogConfig = field(default_factory=LogConfig)
    bounds: EngineBounds = field(default_factory=EngineBounds)  # per partition group
    redis: RedisConfig = field(default_factory=RedisConfig)
    # stream -> fields masked ("****" + last 4 characters) in HTTP output and in logs
    sensitive_fields: dict[str, tuple[str, ...]] = field(default_factory=dict)
    shutdown_timeout_ms: int = 30_000  # SIGTERM: finish, checkpoint, commit, or exit 1

    def late_topic_for(self, stream: str) -> str:
        return self.late_topic.replace("{stream}", stream)

    def http_address(self) -> tuple[str, int]:
        """Where the operations server listens (`http`, falling back to `metrics`)."""
        host = self.http.host if self.http.host is not None else self.metrics.host
        port = self.http.port if self.http.port is not None else self.metrics.port
        return host, port

    def redis_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `redis.Redis.from_url(self.redis_url, **kwargs)`."""
        return self.redis.connection_kwargs(self.redis_url)


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
    if isinstance(data.get("kafka"), dict) and "security" in data["kafka"]:
        security = _build(KafkaSecurity, data["kafka"]["security"], "kafka.security")
        data["kafka"] = {**data["kafka"], "security": security}
    nested = {
        "kafka": KafkaConfig,
        "batch": BatchConfig,
        "metrics": MetricsConfig,
        "http": HttpConfig,
        "log": LogConfig,
        "redis": RedisConfig,
        "bounds": EngineBounds,
    }
    for key, cls in nested.items():
        if key in data:
            data[key] = _build(cls, data[key], key)
    if "sensitive_fields" in data:
        data["sensitive_fields"] = _sensitive(data["sensitive_fields"])
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
    if config.log.format not in ("text", "json"):
        raise ConfigError(f"config: log.format {config.log.format!r} is not one of text, json")
    config.kafka.security.validate()
    config.bounds.validate()
    config.redis_kwargs()  # TLS settings without rediss://
    return config


def _sensitive(data: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(data, dict):
        raise ConfigError("sensitive_fields: expected a mapping of stream to field names")
    out: dict[str, tuple[str, ...]] = {}
    for stream, names in data.items():
        out[str(stream)] = (names,) if isinstance(names, str) else tuple(str(n) for n in names)
    return out


def apply_env_overrides(
    data: dict[str, Any], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """`data` with every `CEP__A__B=value` variable applied as option `a.b`.

    Names are case-insensitive (`CEP__KAFKA__BOOTSTRAP` sets `kafka.bootstrap`); values
    are YAML, so `5000`, `true` and `[a, b]` keep their types. In `kafka.consumer` and
    `kafka.producer` an `_` stands for a `.` (`CEP__KAFKA__CONSUMER__FETCH_MAX_BYTES`
    sets `fetch.max.bytes`). The result is validated like the file itself.
    """
    environ = os.environ if environ is None else environ
    out: dict[str, Any] = _copy(data)
    for name in sorted(environ):
        if not name.upper().startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        if not all(path):
            raise ConfigError(f"environment variable {name}: empty option name")
        if len(path) >= 3 and tuple(path[:2]) in _DOTTED:
            path = [*path[:2], ".".join(path[2:]).replace("_", ".")]
        try:
            value = yaml.safe_load(environ[name])
        except yaml.YAMLError as exc:
            raise ConfigError(f"environment variable {name}: not valid YAML: {exc}") from exc
        target = out
        for part in path[:-1]:
            child = target.get(part)
            if child is None:
                child = target[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"environment variable {name}: {part} is not a section")
            target = child
        target[path[-1]] = value
    return out


def _copy(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _copy(v) if isinstance(v, dict) else v for k, v in data.items()}


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> ServiceConfig:
    """Read `path`, apply `CEP__...` environment overrides, validate."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config {path}: expected a mapping at the top level")
    return config_from_mapping(apply_env_overrides(data, environ))
