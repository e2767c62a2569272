"""The embedded broker and Redis really work: produce, consume in a group, commit, round trip."""

from __future__ import annotations

import socket
import time
import uuid

import pytest
import redis
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from service.embedded import consumer_defaults, create_topics, free_port, producer_defaults

pytestmark = pytest.mark.integration

N_MESSAGES = 50
PARTITIONS = 3


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert 1024 <= port <= 65535
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()


def test_produce_consume_commit(kafka_bootstrap: str, topic_name: str) -> None:
    create_topics(kafka_bootstrap, {topic_name: PARTITIONS})
    create_topics(kafka_bootstrap, {topic_name: PARTITIONS})  # already exists: no error

    delivered: list[int | None] = []  # partition of each delivered message
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            errors.append(err)
        else:
            delivered.append(msg.partition())

    producer = Producer(
        {"bootstrap.servers": kafka_bootstrap, **producer_defaults(), "enable.idempotence": True}
    )
    sent = {f"key-{i}": f"value-{i}" for i in range(N_MESSAGES)}
    for key, value in sent.items():
        producer.produce(topic_name, key=key, value=value, on_delivery=on_delivery)
    assert producer.flush(10) == 0
    assert errors == []
    assert len(delivered) == N_MESSAGES
    per_partition = {p: delivered.count(p) for p in range(PARTITIONS)}
    assert all(n > 0 for n in per_partition.values()), per_partition

    group = f"g-{uuid.uuid4().hex[:12]}"
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            **consumer_defaults(),
            "group.id": group,
            "enable.auto.commit": False,
        }
    )
    received: dict[str, str] = {}
    try:
        consumer.subscribe([topic_name])
        deadline = time.monotonic() + 30
        while len(received) < N_MESSAGES and time.monotonic() < deadline:
            msg = consumer.poll(0.1)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            raw_key, raw_value = msg.key(), msg.value()
            assert raw_key is not None and raw_value is not None
            assert raw_key.decode() not in received
            received[raw_key.decode()] = raw_value.decode()
        assert received == sent
        assert consumer.poll(0.3) is None  # nothing beyond what was produced

        consumer.commit(asynchronous=False)
        assignment = consumer.assignment()
        assert sorted(tp.partition for tp in assignment) == list(range(PARTITIONS))
        committed = consumer.committed(
            [TopicPartition(topic_name, p) for p in range(PARTITIONS)], timeout=10
        )
    finally:
        consumer.close()
    offsets = {tp.partition: tp.offset for tp in committed}
    assert all(tp.error is None for tp in committed)
    assert offsets == per_partition  # next offset to read == messages in each partition


def test_redis_round_trip(redis_url: str) -> None:
    key = f"cep-test:{uuid.uuid4().hex}"
    with redis.Redis.from_url(redis_url) as client:
        assert client.ping()
        assert client.set(key, b"\x00value\xff", ex=60)
        assert client.get(key) == b"\x00value\xff"
        assert client.delete(key) == 1
        assert client.get(key) is None
