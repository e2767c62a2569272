"""The daemon's outputs: alerts (with cooldown and shadow mode), late events, dead letters.

A mixin of `service.app.Service`, kept apart so each module stays readable; it uses the
service's producer, config, metrics and rule list.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from confluent_kafka import Message, Producer

from nfa.program import Schema
from nfa.results import EngineOutput, Match
from service.alerts import encode
from service.config import ServiceConfig
from service.metrics import Metrics
from service.partition import PartitionState
from service.rule_alerts import RuleProgram, rule_alert

OFFSET_BITS = 44
Headers = list[tuple[str, str | bytes | None]]


class OutputsMixin:
    config: ServiceConfig
    producer: Producer
    metrics: Metrics
    schema: Schema
    rules: list[RuleProgram]
    topics: list[str]
    cooldown_ms: list[int]
    clock: Callable[[], float]
    on_alert: Callable[[dict[str, Any]], None] | None

    def _emit(self, state: PartitionState, output: EngineOutput, raw: dict[int, Message]) -> None:
        for late in output.late:
            stream = self.schema.streams[late.stream].name
            self.metrics.events_late.labels(stream).inc()
            message = raw.get(late.seq)
            if message is not None:
                headers: Headers = [
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
            self._produce_match(state, match, timed_out=False)
        for match in output.timeouts:
            self._produce_match(state, match, timed_out=True)

    def _produce_match(self, state: PartitionState, match: Match, timed_out: bool) -> None:
        program = self.rules[match.rule]
        name = program.info.name
        spec = program.on_timeout if timed_out else program.emit
        if spec is None:
            return
        cooldown = self.cooldown_ms[match.rule]
        if cooldown and not timed_out:
            if match.time < state.cooldown_until.get((match.rule, match.key), -(2**62)):
                self.metrics.alerts_suppressed.labels(name).inc()
                return
            state.cooldown_until[(match.rule, match.key)] = match.time + cooldown
        key = state.keys.value(match.key)
        document = rule_alert(match, program, key, lambda seq: self._event_id(seq, state.number))
        settings = self.config.rule_settings.get(name)
        topic = self.config.shadow_topic if settings and settings.shadow else spec.topic
        (self.metrics.timeouts if timed_out else self.metrics.alerts).labels(name).inc()
        self.producer.produce(topic, encode(document), key.encode())
        if not timed_out:  # event time to emit, on the wall clock
            self.metrics.alert_latency_seconds.observe(max(0.0, self.clock() - match.time / 1000))
        if self.on_alert is not None:
            self.on_alert(document)

    def _event_id(self, seq: int, partition: int) -> str:
        topic = self.topics[seq >> OFFSET_BITS]
        return f"{topic}/{partition}/{seq & ((1 << OFFSET_BITS) - 1)}"

    def _origin(self, message: Message) -> Headers:
        return [
            ("cep.source.topic", (message.topic() or "").encode()),
            ("cep.source.partition", str(message.partition()).encode()),
            ("cep.source.offset", str(message.offset()).encode()),
        ]

    def _dead_letter(self, message: Message, reason: str) -> None:
        value = message.value() or b""
        limit = self.config.max_message_bytes
        headers: Headers = [("cep.error", reason.encode()), *self._origin(message)]
        if len(value) > limit:
            headers.append(("cep.truncated", b"true"))
            value = value[:limit]
        self.producer.produce(self.config.dead_letter_topic, value, message.key(), headers=headers)
        self.metrics.dead_letters.labels(message.topic() or "").inc()
