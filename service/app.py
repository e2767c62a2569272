"""The daemon's run loop: consume, decode, match, produce, checkpoint, commit.

Phases, each logged: start (rules compiled, Redis reached, clients created), run (the loop
below), stop (checkpoint, commit, close).

One loop iteration:
1. consume up to `batch.max_messages` messages (waiting at most `batch.max_wait_ms`);
2. per partition group (partition n of every input topic), decode each topic's messages in
   one batch; rejected ones go to the dead-letter topic with the reason in their headers;
3. run the group's engine; late events go to the stream's late topic, matches to the
   rule's topic (or the shadow topic; cooldowns may suppress them), timed-out partial
   matches to the rule's timeout topic;
4. when nothing arrived, advance the watermark of idle streams with the clock;
5. every `checkpoint_interval_ms`: (a) flush the producer, so every output of the
   processed input is written; (b) save each changed group's state to Redis with the next
   offsets it covers; (c) commit those offsets to Kafka. A crash after (a) or (b) replays
   input since the last commit from the matching checkpoint: at-least-once, and the alerts
   written twice carry the same ids.

On assignment a group's state is restored from the checkpoint whose offsets equal Kafka's
committed offsets (Kafka is the truth); on revocation it is checkpointed and committed first.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import redis
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from prometheus_client import CollectorRegistry

from cep.compiler import CompiledRules
from nfa.batch import EventBatch
from service.config import ServiceConfig
from service.metrics import Metrics
from service.outputs import OFFSET_BITS, OutputsMixin
from service.partition import (
    PartitionState,
    new_partition,
)
from service.rule_set import RuleSetMixin
from service.state import Checkpoint, CheckpointStore, RedisCheckpointStore

log = logging.getLogger("cep.service")


def encode_seq(input_index: int, offset: int) -> int:
    return (input_index << OFFSET_BITS) | offset


class Service(OutputsMixin, RuleSetMixin):
    """A running daemon; `run_once` is one loop iteration, so tests can drive it."""

    def __init__(
        self,
        config: ServiceConfig,
        rules: CompiledRules,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
        on_alert: Callable[[dict[str, Any]], None] | None = None,
        store: CheckpointStore | None = None,
    ):
        self.config = config
        self._install(rules)
        self.clock = clock
        self.on_alert = on_alert
        self.metrics = Metrics.create(registry or CollectorRegistry())
        self.topics = [i.topic for i in config.inputs]
        self.inputs = [(i.topic, i.stream) for i in config.inputs]
        self.partitions: dict[int, PartitionState] = {}
        self._warm_up()
        self.group = config.kafka.group_id
        self.redis = redis.Redis.from_url(config.redis_url, **config.redis_kwargs())
        self.redis.ping()
        self.store = store or RedisCheckpointStore(self.redis, keep=config.checkpoints_kept)
        consumer_conf = {
            "bootstrap.servers": config.kafka.bootstrap,
            "group.id": self.group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            # Co-partitioned topics: partition n of every topic goes to the same instance.
            "partition.assignment.strategy": "range",
            **config.kafka.security.librdkafka(),  # TLS/SASL (service/config.py)
            **config.kafka.consumer,
        }
        self.consumer = Consumer(consumer_conf)
        producer_conf = {
            "bootstrap.servers": config.kafka.bootstrap,
            **config.kafka.security.librdkafka(),  # TLS/SASL (service/config.py)
            **config.kafka.producer,
        }
        self.transactional = config.guarantee == "exactly_once"
        if self.transactional:
            # The same id after a restart: the broker fences the previous incarnation.
            producer_conf["transactional.id"] = f"cep-{self.group}-{config.instance_id}"
        self.producer_conf = producer_conf
        self.producer = self._new_producer()
        self.consumer.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        self.last_checkpoint = time.monotonic()
        self.redis.hset(f"cep:{self.group}:status", mapping={"started": int(clock() * 1000)})
        log.info(
            "started: %d rules on %s (%s engine)",
            len(self.programs),
            ", ".join(self.topics),
            config.engine,
        )

    def _warm_up(self) -> None:
        """Compile (or load from the disk cache) every kernel before joining the group, so
        an assignment callback never waits for the compiler."""
        started = time.perf_counter()
        self._partition(-1)
        log.info("rules compiled in %.1f s", time.perf_counter() - started)

    # ------------------------------------------------------------------ partitions
    def _partition(
        self, number: int, snapshot: bytes | None = None, offsets: dict[str, int] | None = None
    ) -> PartitionState:
        return new_partition(
            number,
            self.schema,
            self.programs,
            self.inputs,
            self.config.max_message_bytes,
            self.engine_kind,
            self.identity,
            snapshot,
            offsets,
            self.sql_programs,
        )

    def _on_assign(self, consumer: Consumer, assigned: list[TopicPartition]) -> None:
        numbers = sorted({tp.partition for tp in assigned} - set(self.partitions))
        wanted = [TopicPartition(topic, n) for n in numbers for topic in self.topics]
        committed = self._committed(consumer, wanted) if wanted else []
        for number in numbers:
            offsets = {
                tp.topic: tp.offset for tp in committed if tp.partition == number and tp.offset >= 0
            }
            checkpoint = self._find_checkpoint(number, offsets) if offsets else None
            if checkpoint is not None:
                self.partitions[number] = self._partition(
                    number, checkpoint.state, checkpoint.offsets
                )
                log.info("partition %d: restored the checkpoint at %s", number, checkpoint.offsets)
            else:
                if offsets:
                    log.warning(
                        "partition %d: no checkpoint covers committed offsets %s; starting "
                        "with empty state (partial matches before them are lost)",
                        number,
                        offsets,
                    )
                self.partitions[number] = self._partition(number, offsets=offsets)
        log.info("assigned %s", [(tp.topic, tp.partition) for tp in assigned])

    def _committed(self, consumer: Consumer, wanted: list[TopicPartition]) -> list[TopicPartition]:
        """Kafka's committed offsets; retried while the group coordinator is unreachable."""
        for attempt in range(6):
            try:
                return list(consumer.committed(wanted, timeout=10))
            except KafkaException as exc:
                log.warning("committed offsets unavailable (%s); attempt %d", exc, attempt + 1)
                time.sleep(1)
        raise RuntimeError("cannot read committed offsets from Kafka; is the broker reachable?")

    def _find_checkpoint(self, number: int, offsets: dict[str, int]) -> Checkpoint | None:
        """The checkpoint for Kafka's committed offsets; waits for Redis rather than start a
        partition with empty state (which would lose its partial matches)."""
        delay = 0.5
        while True:
            try:
                return self.store.find(self.group, number, offsets)
            except redis.RedisError as exc:
                log.warning(
                    "partition %d: cannot read checkpoints (%s); retrying in %.1f s",
                    number,
                    exc,
                    delay,
                )
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _on_revoke(self, consumer: Consumer, revoked: list[TopicPartition]) -> None:
        self.checkpoint()
        for number in {tp.partition for tp in revoked}:
            self.partitions.pop(number, None)
        log.info("revoked %s", [(tp.topic, tp.partition) for tp in revoked])

    # ------------------------------------------------------------------ the loop
    def _new_producer(self) -> Producer:
        producer = Producer(self.producer_conf)
        if self.transactional:
            producer.init_transactions(30)
            producer.begin_transaction()
        return producer

    def _recover(self, exc: KafkaException) -> bool:
        """After a fatal producer error (an idempotent or transactional producer that lost
        its sequence, e.g. the broker lost its state), outputs since the last commit may be
        lost: recreate the producer and rewind every partition group to its last committed
        checkpoint, so that input is processed again. False for any other error."""
        error = exc.args[0] if exc.args else None
        if not isinstance(error, KafkaError) or not error.fatal():
            return False
        log.error("fatal producer error (%s): new producer, rewinding to the last commit", error)
        self.producer = self._new_producer()
        self.partitions.clear()
        assigned = self.consumer.assignment()
        self._on_assign(self.consumer, assigned)
        for tp in self._committed(self.consumer, assigned):
            tp.offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            self.consumer.seek(tp)
        return True

    def run_once(self) -> int:
        """One iteration; returns how many messages it consumed."""
        try:
            return self._run_once()
        except KafkaException as exc:
            if not self._recover(exc):
                raise
            return 0

    def _run_once(self) -> int:
        batch = self.config.batch
        messages = self.consumer.consume(batch.max_messages, batch.max_wait_ms / 1000)
        started = time.perf_counter()
        good = [m for m in messages if not self._is_error(m)]
        if good:
            self._handle(good)
            self.metrics.batch_seconds.observe(time.perf_counter() - started)
        else:
            self._advance_idle()
        self.producer.poll(0)
        if time.monotonic() - self.last_checkpoint >= self.config.checkpoint_interval_ms / 1000:
            self.checkpoint()
        return len(good)

    def checkpoint(self) -> None:
        """Steps 5a-5c of the loop: flush outputs, save changed state, commit its offsets."""
        self.last_checkpoint = time.monotonic()
        dirty = [p for p in self.partitions.values() if p.dirty]
        if not dirty:
            return
        started = time.perf_counter()  # cep_checkpoint_seconds
        for state in dirty:
            self._compact_pools(state)
        offsets = [TopicPartition(t, p.number, o) for p in dirty for t, o in p.next_offsets.items()]
        if self.transactional:
            # Outputs and offsets commit atomically; the checkpoint is saved just before, so
            # a crash before the commit finds the previous checkpoint matching Kafka's
            # offsets. Without Redis the transaction stays open and is retried.
            if not self._save(dirty):
                return
            metadata = self.consumer.consumer_group_metadata()
            self.producer.send_offsets_to_transaction(offsets, metadata, 30)
            self.producer.commit_transaction(30)
            self.producer.begin_transaction()
        else:
            try:
                remaining = self.producer.flush(self.config.checkpoint_interval_ms / 1000 + 5)
            except KafkaException as exc:
                if not self._recover(exc):
                    raise
                return
            if remaining:
                # The broker is unreachable: keep the outputs queued and retry at the next
                # interval; committing now could lose them.
                log.warning("%d output message(s) not yet delivered; not committing", remaining)
                return
            if not self._save(dirty):
                return  # no commit without a checkpoint; the next interval retries both
            try:
                self.consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as exc:
                log.warning("offset commit failed (%s); retrying at the next interval", exc)
                return
        for state in dirty:
            state.dirty = False
        self.metrics.checkpoint_seconds.observe(time.perf_counter() - started)

    def _compact_pools(self, state: PartitionState) -> None:
        """Free pool entries no state refers to (`PartitionState.compact_pools`)."""
        strings, keys = state.compact_pools(self.config.bounds.compact_pools_at)
        if strings or keys:
            self.metrics.pool_released.labels("strings").inc(strings)
            self.metrics.pool_released.labels("keys").inc(keys)
            log.info(
                "partition %d: released %d strings and %d keys; %d and %d remain",
                state.number,
                strings,
                keys,
                state.pool.live,
                state.keys.live,
            )

    def _save(self, dirty: list[PartitionState]) -> bool:
        """Save the checkpoints; False (logged, nothing committed) while Redis is down."""
        try:
            for state in dirty:
                self.store.save(
                    self.group, state.number, Checkpoint(dict(state.next_offsets), state.encode())
                )
        except redis.RedisError as exc:
            log.warning(
                "checkpoint not saved (%s); offsets stay uncommitted until Redis is back", exc
            )
            return False
        return True

    def _is_error(self, message: Message) -> bool:
        error = message.error()
        if error is None:
            return False
        if error.code() != KafkaError._PARTITION_EOF:
            log.warning("consumer error: %s", error)
        return True

    def _handle(self, messages: list[Message]) -> None:
        grouped: dict[int, dict[str, list[Message]]] = defaultdict(lambda: defaultdict(list))
        for message in messages:
            grouped[message.partition() or 0][message.topic() or ""].append(message)
        for number, by_topic in grouped.items():
            state = self.partitions.get(number)
            if state is None:  # consumed before the assignment callback ran: not expected
                state = self.partitions.setdefault(number, self._partition(number))
            batches: list[EventBatch] = []
            raw: dict[int, Message] = {}
            for topic, group in by_topic.items():
                batches.append(self._decode(state, topic, group, raw))
                state.next_offsets[topic] = (group[-1].offset() or 0) + 1
            state.dirty = True
            started = time.perf_counter()
            output = state.engine.process(EventBatch.concat(self.schema, batches))
            engine_done = time.perf_counter()
            self._emit(state, output, raw)
            self.metrics.engine_seconds.observe(engine_done - started)
            self.metrics.emit_seconds.observe(time.perf_counter() - engine_done)

    def _decode(
        self, state: PartitionState, topic: str, group: list[Message], raw: dict[int, Message]
    ) -> EventBatch:
        input_index = self.topics.index(topic)
        seqs = [encode_seq(input_index, m.offset() or 0) for m in group]
        decoder = state.decoders[topic]
        if decoder.stream.processing_time:
            # Processing time: the arrival time is the event time, so the event-time machinery
            # (never late, released at once, timers on the clock-driven watermark) applies.
            stamps = [int(self.clock() * 1000)] * len(group)
        else:
            stamps = [m.timestamp()[1] for m in group]
        started = time.perf_counter()
        decoded, rejected = decoder.decode([m.value() for m in group], seqs, stamps)
        self.metrics.decode_seconds.observe(time.perf_counter() - started)
        self.metrics.events_in.labels(decoder.stream.name).inc(len(group))
        self.metrics.decode_failures.labels(decoder.stream.name).inc(len(rejected))
        for item in rejected:
            self._dead_letter(group[item.index], item.reason)
        raw.update(zip(seqs, group, strict=True))
        if len(decoded):
            state.last_event_ms[decoder.stream_index] = self.clock() * 1000
        return decoded

    def _advance_idle(self) -> None:
        """Nothing arrived: move the watermark of quiet streams with the (injected) clock.

        An event-time stream with `idle` set advances once it has had no event for that
        long; a processing-time stream follows the clock at once, so its timers fire on
        the wall clock.
        """
        now_ms = int(self.clock() * 1000)
        for state in self.partitions.values():
            for s_index, stream in enumerate(self.schema.streams):
                if not stream.processing_time:
                    last = state.last_event_ms.get(s_index)
                    if stream.idle_ms is None or last is None or now_ms - last < stream.idle_ms:
                        continue
                output = state.engine.advance_watermark(s_index, now_ms - stream.out_of_order_ms)
                if output.matches or output.timeouts:
                    state.dirty = True
                self._emit(state, output, {})

    def close(self) -> None:
        try:
            self.checkpoint()
        finally:
            self.consumer.close()
            if self.transactional:
                self.producer.abort_transaction(10)  # the empty one begun after the last commit
            self.producer.flush(10)
            self.redis.close()
            log.info("stopped")
