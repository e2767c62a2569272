"""Prometheus metrics of the daemon, created once against a registry that is passed in.

Counters and histograms here are updated by the run loop. Values that describe the state
(live partial matches, watermark lag, consumer lag) are computed at scrape time by the
collector in `service.collectors`, never counted in the hot loop.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

# Event time to emit: from sub-second (streaming) to hours (late data, long windows).
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, float("inf"))


@dataclass(frozen=True)
class Metrics:
    events_in: Counter
    events_late: Counter
    decode_failures: Counter
    dead_letters: Counter
    alerts: Counter
    alerts_suppressed: Counter
    timeouts: Counter
    batch_seconds: Histogram
    decode_seconds: Histogram
    alert_latency_seconds: Histogram
    checkpoint_seconds: Histogram
    engine_seconds: Histogram
    emit_seconds: Histogram
    rule_reloads: Counter
    reload_dropped: Counter
    rule_reload_failures: Counter
    pool_released: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> Metrics:
        return cls(
            events_in=Counter("cep_events_in", "Events consumed", ["stream"], registry=registry),
            events_late=Counter(
                "cep_events_late", "Events at or below the watermark", ["stream"], registry=registry
            ),
            decode_failures=Counter(
                "cep_decode_failures",
                "Messages that could not be decoded (sent to the dead-letter topic)",
                ["stream"],
                registry=registry,
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
            alert_latency_seconds=Histogram(
                "cep_alert_latency_seconds",
                "Wall clock at emit minus the alert's event time",
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            checkpoint_seconds=Histogram(
                "cep_checkpoint_seconds",
                "Time to flush outputs, save changed state and commit offsets",
                registry=registry,
            ),
            engine_seconds=Histogram(
                "cep_engine_seconds",
                "Time to run one partition group's batch through the engine",
                registry=registry,
            ),
            emit_seconds=Histogram(
                "cep_emit_seconds",
                "Time to build one batch's outputs and hand them to the producer",
                registry=registry,
            ),
            rule_reloads=Counter(
                "cep_rule_reloads", "Rule deployments swapped in", registry=registry
            ),
            reload_dropped=Counter(
                "cep_reload_dropped_partial_matches",
                "Partial matches of a changed, disabled or removed rule dropped by a deployment",
                ["rule"],
                registry=registry,
            ),
            rule_reload_failures=Counter(
                "cep_rule_reload_failures",
                "Rule set reloads that failed (the old rules stay)",
                registry=registry,
            ),
            pool_released=Counter(
                "cep_pool_released",
                "String or key pool entries freed at a checkpoint (no state referred to them)",
                ["pool"],
                registry=registry,
            ),
        )
