"""Environment overrides of the config, and the security settings passed to the clients."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from cep.compiler import compile_rules
from cep.parser import parse_text
from service.config import (
    ConfigError,
    KafkaSecurity,
    RedisConfig,
    apply_env_overrides,
    config_from_mapping,
    load_config,
)
from service.runner import check_sensitive_fields

INPUTS = {"inputs": [{"topic": "t", "stream": "txns"}]}


def test_env_overrides_nested_options_with_yaml_types(tmp_path: Path) -> None:
    path = tmp_path / "service.yaml"
    path.write_text("kafka: {bootstrap: file:9092, group_id: g}\ninputs: [{topic: t, stream: s}]\n")
    env = {
        "CEP__KAFKA__BOOTSTRAP": "env:9092",
        "CEP__BATCH__MAX_MESSAGES": "100",
        "cep__print_alerts": "true",
        "CEP__HTTP__TOKEN": "s3cret",
        "CEP__KAFKA__CONSUMER__FETCH_MAX_BYTES": "1048576",
        "CEP__RULE_SETTINGS__CARD_TESTING__SHADOW": "true",
        "CEP__LOG__FORMAT": "json",
        "OTHER__KAFKA__BOOTSTRAP": "ignored",
    }
    config = load_config(path, env)
    assert config.kafka.bootstrap == "env:9092" and config.kafka.group_id == "g"
    assert config.batch.max_messages == 100 and config.batch.max_wait_ms == 50
    assert config.print_alerts is True and config.http.token == "s3cret"
    assert config.kafka.consumer == {"fetch.max.bytes": 1048576}
    assert config.rule_settings["card_testing"].shadow is True
    assert config.log.format == "json"


def test_env_can_replace_a_list_and_does_not_change_the_input() -> None:
    data = {"kafka": {"bootstrap": "a"}, **INPUTS}
    out = apply_env_overrides(data, {"CEP__INPUTS": "[{topic: x, stream: y}]"})
    assert out["inputs"] == [{"topic": "x", "stream": "y"}]
    assert data["inputs"] == [{"topic": "t", "stream": "txns"}]
    assert apply_env_overrides(data, {}) == data


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CEP__KAFKA__BOOTSTRAP__HOST": "x"}, "bootstrap is not a section"),
        ({"CEP__KAFKA____X": "x"}, "empty option name"),
        ({"CEP__BATCH__MAX_MESSAGES": "[1"}, "not valid YAML"),
    ],
)
def test_env_mistakes(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        apply_env_overrides({"kafka": {"bootstrap": "a"}}, env)


def test_env_typos_are_unknown_options(tmp_path: Path) -> None:
    path = tmp_path / "service.yaml"
    path.write_text("inputs: [{topic: t, stream: s}]\n")
    with pytest.raises(ConfigError, match="unknown option"):
        load_config(path, {"CEP__KAFKA__BOOTSTRAPP": "x"})


def test_kafka_security_maps_to_librdkafka_keys() -> None:
    config = config_from_mapping(
        {
            **INPUTS,
            "kafka": {
                "security": {
                    "protocol": "SASL_SSL",
                    "sasl_mechanism": "SCRAM-SHA-512",
                    "username": "cep",
                    "password": "pw",
                    "ca_location": "/etc/ca.pem",
                    "verify_hostname": False,
                }
            },
        }
    )
    assert config.kafka.security.librdkafka() == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "cep",
        "sasl.password": "pw",
        "ssl.ca.location": "/etc/ca.pem",
        "ssl.endpoint.identification.algorithm": "none",
    }
    mutual = KafkaSecurity(
        protocol="ssl", certificate_location="/c.pem", key_location="/k.pem", key_password="kp"
    )
    assert mutual.librdkafka() == {
        "security.protocol": "ssl",
        "ssl.certificate.location": "/c.pem",
        "ssl.key.location": "/k.pem",
        "ssl.key.password": "kp",
    }
    assert KafkaSecurity().librdkafka() == {}


def test_kafka_security_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "service.yaml"
    path.write_text("inputs: [{topic: t, stream: s}]\nkafka: {security: {protocol: sasl_ssl}}\n")
    env = {"CEP__KAFKA__SECURITY__USERNAME": "u", "CEP__KAFKA__SECURITY__PASSWORD": "p"}
    security = load_config(path, env).kafka.security.librdkafka()
    assert security["sasl.username"] == "u" and security["sasl.password"] == "p"


@pytest.mark.parametrize(
    ("security", "message"),
    [
        ({"protocol": "tls"}, "not one of"),
        ({"username": "u"}, "SASL settings need"),
        ({"protocl": "ssl"}, "unknown option"),
    ],
)
def test_kafka_security_mistakes(security: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_mapping({**INPUTS, "kafka": {"security": security}})


def test_redis_password_and_tls() -> None:
    config = config_from_mapping(
        {
            **INPUTS,
            "redis_url": "rediss://redis.internal:6380/0",
            "redis": {"password": "pw", "ca_location": "/etc/redis-ca.pem"},
        }
    )
    kwargs = config.redis_kwargs()
    assert kwargs == {
        "password": "pw",
        "ssl_ca_certs": "/etc/redis-ca.pem",
        "ssl_check_hostname": True,
        "ssl_cert_reqs": "required",
    }
    pool = redis.Redis.from_url(config.redis_url, **kwargs).connection_pool
    assert pool.connection_class is redis.SSLConnection
    assert pool.connection_kwargs["password"] == "pw"
    assert pool.connection_kwargs["ssl_ca_certs"] == "/etc/redis-ca.pem"
    assert pool.connection_kwargs["host"] == "redis.internal"


def test_redis_password_in_the_url_needs_nothing_else() -> None:
    config = config_from_mapping({**INPUTS, "redis_url": "redis://:pw@r:6379/1"})
    assert config.redis_kwargs() == {}
    pool = redis.Redis.from_url(config.redis_url, **config.redis_kwargs()).connection_pool
    assert pool.connection_kwargs["password"] == "pw"
    assert pool.connection_class is redis.Connection


def test_redis_tls_settings_need_rediss() -> None:
    with pytest.raises(ConfigError, match="rediss://"):
        config_from_mapping({**INPUTS, "redis": {"ca_location": "/ca.pem"}})
    kwargs = RedisConfig(verify_hostname=False, username="u").connection_kwargs("rediss://h")
    assert kwargs["ssl_check_hostname"] is False and kwargs["username"] == "u"


def test_http_address_falls_back_to_the_metrics_section() -> None:
    assert config_from_mapping(INPUTS).http_address() == ("127.0.0.1", 9464)
    legacy = config_from_mapping({**INPUTS, "metrics": {"host": "0.0.0.0", "port": 9000}})
    assert legacy.http_address() == ("0.0.0.0", 9000)
    both = config_from_mapping({**INPUTS, "metrics": {"port": 9000}, "http": {"port": 8080}})
    assert both.http_address() == ("127.0.0.1", 8080)


def test_log_format_is_checked() -> None:
    with pytest.raises(ConfigError, match=r"log\.format"):
        config_from_mapping({**INPUTS, "log": {"format": "xml"}})


def test_sensitive_fields_are_checked_against_the_rules() -> None:
    schema = compile_rules(
        parse_text(
            "stream txns key card_number time ts fields { card_number: string, ts: timestamp }\n"
            'rule r from txns pattern a where a: card_number == "x"\n',
            "r.cep",
        )
    ).schema
    good = config_from_mapping({**INPUTS, "sensitive_fields": {"txns": "card_number"}})
    assert good.sensitive_fields == {"txns": ("card_number",)}
    check_sensitive_fields(good, schema)
    with pytest.raises(ConfigError, match="no stream 'logins'"):
        check_sensitive_fields(
            config_from_mapping({**INPUTS, "sensitive_fields": {"logins": ["ip"]}}), schema
        )
    with pytest.raises(ConfigError, match="no field"):
        check_sensitive_fields(
            config_from_mapping({**INPUTS, "sensitive_fields": {"txns": ["pan"]}}), schema
        )
