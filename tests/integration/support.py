"""Helpers of the integration tests: read a topic back, build a service config."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Consumer, Message

from service.config import KafkaConfig, ServiceConfig, config_from_mapping
from service.embedded import consumer_defaults, producer_defaults


def drain(
    bootstrap: str, topic: str, want: int, timeout: float = 20.0, **settings: Any
) -> list[Message]:
    """Read up to `want` messages of `topic` from the start (a fresh group each call)."""
    group = f"reader-{topic}-{time.monotonic_ns()}"
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, **consumer_defaults(), **settings}
    )
    consumer.subscribe([topic])
    found: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while len(found) < want and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                found.append(message)
    finally:
        consumer.close()
    return found


def service_config(bootstrap: str, redis_url: str, group: str, **options: Any) -> ServiceConfig:
    """A config for the embedded broker: short session timeout, small fetch wait."""
    base = config_from_mapping(options)
    kafka = KafkaConfig(bootstrap, group, consumer_defaults(), producer_defaults())
    return ServiceConfig(**{**base.__dict__, "kafka": kafka, "redis_url": redis_url})
