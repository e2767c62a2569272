"""Score a replay against ground-truth labels, and format the replay summary.

A label says "rule R must fire on key K" (the generator writes one per injected scenario:
scenario = rule name, key, the scenario's event ids, the event time it can be decided).
Per rule: precision is the share of alerts whose (rule, key) has a label, recall the share
of labels whose (rule, key) got an alert, and time to alert is how long after the fraud
began the alert came: alert time minus the first labelled event's time (when the replay saw
that event), else minus the label's time. Times are event time, so the numbers do not
depend on how fast the replay ran.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from nfa.trace_entries import iso
from service.decode import parse_timestamp

if TYPE_CHECKING:
    from service.replay import ReplayReport


class LabelError(ValueError):
    """A labels file line that is not a label."""


@dataclass(frozen=True, slots=True)
class Label:
    rule: str
    key: str
    event_ids: tuple[str, ...] = ()
    time: int | None = None


@dataclass
class LabelScore:
    """One rule's alerts measured against its labels."""

    labels: int = 0
    alerts: int = 0
    true_alerts: int = 0  # alerts whose (rule, key) has a label
    found: int = 0  # labels whose (rule, key) got an alert
    time_to_alert_s: list[float] = field(default_factory=list)

    @property
    def precision(self) -> float | None:
        return self.true_alerts / self.alerts if self.alerts else None

    @property
    def recall(self) -> float | None:
        return self.found / self.labels if self.labels else None

    def time_to_alert(self, percentile: float) -> float | None:
        if not self.time_to_alert_s:
            return None
        return float(np.percentile(self.time_to_alert_s, percentile))


def read_labels(path: str | Path) -> list[Label]:
    """Labels from JSON lines `{scenario or rule, key, event_ids?, time?}`."""
    labels: list[Label] = []
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise LabelError(f"{path}:{number}: invalid JSON: {exc}") from None
            rule = doc.get("scenario") or doc.get("rule") if isinstance(doc, dict) else None
            if not rule or doc.get("key") is None:
                raise LabelError(f"{path}:{number}: a label needs `scenario` (or `rule`) and `key`")
            time = parse_timestamp(doc["time"]) if doc.get("time") is not None else None
            ids = tuple(str(i) for i in doc.get("event_ids") or ())
            labels.append(Label(str(rule), str(doc["key"]), ids, time))
    return labels


def wanted_ids(labels: Iterable[Label]) -> set[str]:
    """The event ids whose event time the replay should note, for time to alert."""
    return {ident for label in labels for ident in label.event_ids}


def score(
    alerts: Sequence[Mapping[str, Any]],
    labels: Sequence[Label],
    rules: Iterable[str],
    seen: Mapping[str, int],
) -> tuple[dict[str, LabelScore], dict[str, int]]:
    """Per-rule scores, and the label counts of rules that were not replayed."""
    known = set(rules)
    scores = {rule: LabelScore() for rule in known}
    unknown: dict[str, int] = {}
    labelled = {(label.rule, label.key) for label in labels}
    alert_times: dict[tuple[str, str], list[int]] = {}
    for alert in alerts:
        pair = (alert["rule"], alert["key"])
        alert_times.setdefault(pair, []).append(int(alert["time"]))
        if alert["rule"] in scores:
            scores[alert["rule"]].alerts += 1
            scores[alert["rule"]].true_alerts += pair in labelled
    for ordered in alert_times.values():
        ordered.sort()
    for label in labels:
        if label.rule not in known:
            unknown[label.rule] = unknown.get(label.rule, 0) + 1
            continue
        result = scores[label.rule]
        result.labels += 1
        times = alert_times.get((label.rule, label.key))
        if not times:
            continue
        result.found += 1
        starts = [seen[i] for i in label.event_ids if i in seen]
        began = min(starts) if starts else label.time
        if began is None:
            continue
        at = bisect.bisect_left(times, began)  # the first alert at or after the fraud began
        result.time_to_alert_s.append((times[min(at, len(times) - 1)] - began) / 1000)
    return scores, unknown


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def format_summary(report: ReplayReport) -> str:
    """Totals, late events per stream, and one line per rule (with label scores if any)."""
    lines = [
        f"replay ({report.engine} engine): {report.events:,} events in {report.seconds:.2f} s, "
        f"{report.events_per_second:,.0f} events/s; {len(report.alerts):,} alerts, "
        f"{len(report.timeouts):,} timeouts (engine built in {report.build_seconds:.1f} s)"
    ]
    if report.first_ts is not None and report.last_ts is not None:
        span = f"{report.days:.3f} days" if report.days else "an instant"
        lines.append(f"event time {iso(report.first_ts)} .. {iso(report.last_ts)} ({span})")
    if report.rejected:
        lines.append(f"rejected rows: {report.rejected:,}")
        lines.extend(f"  {sample}" for sample in report.rejected_samples)
    late = ", ".join(f"{s} {n:,}" for s, n in sorted(report.late.items())) or "none"
    lines.append(f"late events (not matched): {late}")
    scored = any(r.score is not None for r in report.rules.values())
    head = f"{'rule':<28} {'alerts':>7} {'timeouts':>8} {'per day':>9}"
    if scored:
        head += f" {'labels':>6} {'precision':>9} {'recall':>6} {'tta p50 s':>9} {'tta p95 s':>9}"
    lines.append(head)
    days = report.days
    for name, rule in sorted(report.rules.items()):
        per_day = rule.alerts / days if days else None
        line = f"{name:<28} {rule.alerts:>7,} {rule.timeouts:>8,} {_cell(per_day, '>9,.1f'):>9}"
        s = rule.score
        if s is not None:
            line += (
                f" {s.labels:>6} {_cell(s.precision, '.3f'):>9} {_cell(s.recall, '.3f'):>6}"
                f" {_cell(s.time_to_alert(50), '.1f'):>9} {_cell(s.time_to_alert(95), '.1f'):>9}"
            )
        lines.append(line)
    for missing, count in sorted(report.unlabelled_rules.items()):
        lines.append(f"note: {count} label(s) of rule {missing!r}, which was not replayed")
    return "\n".join(lines)
