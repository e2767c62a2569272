"""The daemon's run loop: consume, decode, match, produce, commit.

Phases, each logged: start (rules compiled, Redis reached, clients created, metrics
served), run (the loop below), stop (flush the producer, commit, close).

One loop iteration:
1. consume up to `batch.max_messages` messages (waiting at most `batch.max_wait_ms`);
2. decode each topic's messages in one batch; rejected ones go to the dead-letter topic;
3. per partition number (the unit of state: the same-numbered partitions of every input
   topic), run the engine; late events go to the stream's late topic, matches to the
   rule's topic, timed-out partial matches to the rule's timeout topic;
4. when no message arrived, advance the watermark of idle streams with the clock;
5. flush the producer, then commit the consumed offsets (at-least-once: an alert is
   written before the offsets that produced it are committed; ids are deterministic).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from prometheus_client import CollectorRegistry

from cep.compiler import CompiledRules
from nfa.batch import EventBatch, StringPool
from nfa.program import Program
from nfa.reference import EngineConfig, ReferenceEngine
from nfa.results import EngineOutput, Match
from service.alerts import alert_document, encode
from service.config import ServiceConfig
from service.decode import StreamDecoder
from service.metrics import Metrics

log = logging.getLogger("cep.service")
OFFSET_BITS = 44


class MatchEngine(Protocol):
    def process(self, batch: EventBatch) -> EngineOutput: ...
    def advance_watermark(self, stream: int, watermark: int) -> EngineOutput: ...


EngineFactory = Callable[[Sequence[Program], StringPool], MatchEngine]


def default_engine_factory(programs: Sequence[Program], pool: StringPool) -> MatchEngine:
    return ReferenceEngine(programs, pool, EngineConfig())


def encode_seq(input_index: int, offset: int) -> int:
    return (input_index << OFFSET_BITS) | offset


@dataclass
class PartitionState:
    engine: MatchEngine
    last_event_ms: dict[int, float] = field(default_factory=dict)  # stream -> wall clock


class Service:
    """A running daemon; `run_once` is one loop iteration, so tests can drive it."""

    def __init__(
        self,
        config: ServiceConfig,
        rules: CompiledRules,
        registry: CollectorRegistry | None = None,
        engine_factory: EngineFactory = default_engine_factory,
        clock: Callable[[], float] = time.time,
        on_alert: Callable[[dict[str, Any]], None] | None = None,
    ):
        self.config = config
        self.rules = rules
        self.programs = [p for p in rules.programs if p.info.enabled]
        self.schema = rules.schema
        self.pool = StringPool()
        self.keys = StringPool()
        self.engine_factory = engine_factory
        self.clock = clock
        self.on_alert = on_alert
        self.metrics = Metrics.create(registry or CollectorRegistry())
        self.topics = [i.topic for i in config.inputs]
        self.decoders = {
            i.topic: StreamDecoder(
                self.schema, i.stream, self.pool, self.keys, config.max_message_bytes
            )
            for i in config.inputs
        }
        self.partitions: dict[int, PartitionState] = {}
        self.redis = redis.Redis.from_url(config.redis_url)
        self.redis.ping()
        consumer_conf = {
            "bootstrap.servers": config.kafka.bootstrap,
            "group.id": config.kafka.group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            **config.kafka.consumer,
        }
        producer_conf = {"bootstrap.servers": config.kafka.bootstrap, **config.kafka.producer}
        self.consumer = Consumer(consumer_conf)
        self.producer = Producer(producer_conf)
        self.consumer.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        self.redis.hset(
            f"cep:{config.kafka.group_id}:status", mapping={"started": int(clock() * 1000)}
        )
        log.info("started: %d rules on %s", len(self.programs), ", ".join(self.topics))

    # ------------------------------------------------------------------ partitions
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            if tp.partition not in self.partitions:
                self.partitions[tp.partition] = PartitionState(
                    self.engine_factory(self.programs, self.pool)
                )
        log.info("assigned %s", [(tp.topic, tp.partition) for tp in partitions])

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self.partitions.pop(tp.partition, None)
        log.info("revoked %s", [(tp.topic, tp.partition) for tp in partitions])

    # ------------------------------------------------------------------ the loop
    def run_once(self) -> int:
        """One iteration; returns how many messages it consumed."""
        batch = self.config.batch
        messages = self.consumer.consume(batch.max_messages, batch.max_wait_ms / 1000)
        started = time.perf_counter()
        good = [m for m in messages if not self._is_error(m)]
        if good:
            self._handle(good)
        else:
            self._advance_idle()
        self.producer.poll(0)
        if good:
            self.producer.flush()
            self.consumer.commit(asynchronous=False)
            self.metrics.batch_seconds.observe(time.perf_counter() - started)
        return len(good)

    def _is_error(self, message: Message) -> bool:
        error = message.error()
        if error is None:
            return False
        if error.code() != KafkaError._PARTITION_EOF:
            log.warning("consumer error: %s", error)
        return True

    def _handle(self, messages: list[Message]) -> None:
        grouped: dict[tuple[int, str], list[Message]] = defaultdict(list)
        for message in messages:
            grouped[(message.partition() or 0, message.topic() or "")].append(message)
        by_partition: dict[int, list[EventBatch]] = defaultdict(list)
        raw: dict[int, Message] = {}
        for (partition, topic), group in grouped.items():
            input_index = self.topics.index(topic)
            seqs = [encode_seq(input_index, m.offset() or 0) for m in group]
            stamps = [m.timestamp()[1] for m in group]
            decode_started = time.perf_counter()
            decoded, rejected = self.decoders[topic].decode(
                [m.value() for m in group], seqs, stamps
            )
            self.metrics.decode_seconds.observe(time.perf_counter() - decode_started)
            stream = self.decoders[topic].stream.name
            self.metrics.events_in.labels(stream).inc(len(group))
            for item in rejected:
                self._dead_letter(group[item.index], item.reason)
            by_partition[partition].append(decoded)
            raw.update(zip(seqs, group, strict=True))
            if len(decoded):
                state = self.partitions.get(partition)
                if state is not None:
                    for s in set(decoded.stream.tolist()):
                        state.last_event_ms[int(s)] = self.clock() * 1000
        for partition, batches in by_partition.items():
            state = self.partitions.get(partition)
            if state is None:
                state = self.partitions.setdefault(
                    partition, PartitionState(self.engine_factory(self.programs, self.pool))
                )
            output = state.engine.process(EventBatch.concat(self.schema, batches))
            self._emit(output, partition, raw)

    def _advance_idle(self) -> None:
        now_ms = self.clock() * 1000
        for partition, state in self.partitions.items():
            for s_index, stream in enumerate(self.schema.streams):
                if stream.idle_ms is None:
                    continue
                last = state.last_event_ms.get(s_index)
                if last is not None and now_ms - last >= stream.idle_ms:
                    output = state.engine.advance_watermark(
                        s_index, int(now_ms) - stream.out_of_order_ms
                    )
                    self._emit(output, partition, {})

    # ------------------------------------------------------------------ outputs
    def _emit(self, output: EngineOutput, partition: int, raw: dict[int, Message]) -> None:
        for late in output.late:
            stream = self.schema.streams[late.stream].name
            self.metrics.events_late.labels(stream).inc()
            message = raw.get(late.seq)
            if message is not None:
                headers: list[tuple[str, str | bytes | None]] = [
                    ("cep.watermark", str(late.watermark).encode()),
                    *self._origin(message),
                ]
                self.producer.produce(
                    self.config.late_topic_for(stream),
                    message.value(),
                    message.key(),
                    headers=headers,
                )
        for match in output.matches:
            self._produce_match(match, partition, timed_out=False)
        for match in output.timeouts:
            self._produce_match(match, partition, timed_out=True)

    def _produce_match(self, match: Match, partition: int, timed_out: bool) -> None:
        program = self.programs[match.rule]
        spec = program.on_timeout if timed_out else program.emit
        if spec is None:
            return
        key = self.keys.value(match.key)
        document = alert_document(match, program, key, lambda seq: self._event_id(seq, partition))
        (self.metrics.timeouts if timed_out else self.metrics.alerts).labels(
            program.info.name
        ).inc()
        self.producer.produce(spec.topic, encode(document), key.encode())
        if self.on_alert is not None:
            self.on_alert(document)

    def _event_id(self, seq: int, partition: int) -> str:
        topic = self.topics[seq >> OFFSET_BITS]
        return f"{topic}/{partition}/{seq & ((1 << OFFSET_BITS) - 1)}"

    def _origin(self, message: Message) -> list[tuple[str, str | bytes | None]]:
        return [
            ("cep.source.topic", (message.topic() or "").encode()),
            ("cep.source.partition", str(message.partition()).encode()),
            ("cep.source.offset", str(message.offset()).encode()),
        ]

    def _dead_letter(self, message: Message, reason: str) -> None:
        value = message.value() or b""
        limit = self.config.max_message_bytes
        headers: list[tuple[str, str | bytes | None]] = [
            ("cep.error", reason.encode()),
            *self._origin(message),
        ]
        if len(value) > limit:
            headers.append(("cep.truncated", b"true"))
            value = value[:limit]
        self.producer.produce(self.config.dead_letter_topic, value, message.key(), headers=headers)
        self.metrics.dead_letters.labels(message.topic()).inc()

    def close(self) -> None:
        self.producer.flush(10)
        try:
            self.consumer.commit(asynchronous=False)
        except Exception as exc:  # nothing consumed yet: there is nothing to commit
            log.debug("final commit: %s", exc)
        self.consumer.close()
        self.redis.close()
        log.info("stopped")
