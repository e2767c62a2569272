"""Prometheus metrics of the daemon, created once against a registry that is passed in."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass(frozen=True)
class Metrics:
    events_in: Counter
    events_late: Counter
    dead_letters: Counter
    alerts: Counter
    alerts_suppressed: Counter
    timeouts: Counter
    batch_seconds: Histogram
    decode_seconds: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> Metrics:
        return cls(
            events_in=Counter("cep_events_in", "Events consumed", ["stream"], registry=registry),
            events_late=Counter(
                "cep_events_late", "Events at or below the watermark", ["stream"], registry=registry
            ),
            dead_letters=Counter(
                "cep_dead_letters",
                "Messages sent to the dead-letter topic",
                ["topic"],
                registry=registry,
            ),
            alerts=Counter("cep_alerts", "Derived events produced", ["rule"], registry=registry),
            alerts_suppressed=Counter(
                "cep_alerts_suppressed",
                "Alerts suppressed by a cooldown",
                ["rule"],
                registry=registry,
            ),
            timeouts=Counter(
                "cep_timeouts", "Timed-out partial matches produced", ["rule"], registry=registry
            ),
            batch_seconds=Histogram(
                "cep_batch_seconds", "Time to process one consumed batch", registry=registry
            ),
            decode_seconds=Histogram(
                "cep_decode_seconds", "Time to decode one batch of one topic", registry=registry
            ),
        )
