"""Session fixtures: a real Kafka-protocol broker and Redis, started once per test session.

Set CEP_TEST_KAFKA_BOOTSTRAP (host:port) or CEP_TEST_REDIS_URL (redis://...) to use
servers you run yourself instead of the embedded ones.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from service.embedded import EmbeddedBroker, EmbeddedRedis


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    external = os.environ.get("CEP_TEST_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    with EmbeddedBroker() as broker:
        yield broker.bootstrap


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    external = os.environ.get("CEP_TEST_REDIS_URL")
    if external:
        yield external
        return
    with EmbeddedRedis() as server:
        yield server.url


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> str:
    """A topic name unique to this test (Kafka allows [a-zA-Z0-9._-], up to 249 chars)."""
    base = "".join(c if c.isalnum() else "-" for c in request.node.name)[:80]
    return f"t-{base}-{uuid.uuid4().hex[:12]}"
