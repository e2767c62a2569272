"""Rules deployed while running: watch the rule files, validate, swap between two batches.

A deployment is the whole rule set on disk, all or nothing. A background thread looks at
the rule files every `rules_watch_interval_ms` (and at once after SIGHUP); when their
content changed it loads and compiles them and builds their kernels (Numba compiles cost
seconds, so never on the loop thread). Then:

- any diagnostic, or a change to the stream declarations (they fix the input topics'
  decoders; restart to change them), rejects the deployment: the diagnostics go to the log,
  `cep_rule_reload_failures` counts it, `/deployments` shows them, and every rule keeps
  running in its current version;
- otherwise the loop thread swaps the rule set in between two batches (`Service.apply_rules`,
  atomic for every partition group), and each changed rule gets an audit record.

What happens to partial matches is decided per rule by `nfa.migrate.rule_identity` (the
automaton and outputs, not the metadata): unchanged identity (e.g. only `severity` or
`version` edited) — the partial matches continue; changed, disabled or deleted — the old
version's partial matches are dropped and counted in `cep_reload_dropped_partial_matches`
(per rule); a new or changed rule starts from the next event. Alerts carry the rule's
`version`, so a new version's alerts are told apart (and get other ids).

Audit records (one per rule changed, or one per rejected deployment) are logged as JSON
(`audit` field), pushed to the Redis list `cep:{group}:deployments` (last 1,000; skipped
while Redis is down) and kept for `/deployments`.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cep.compiler import CompiledRules
from cep.errors import CepError
from cep.loader import RULE_SUFFIXES, load_paths
from nfa.migrate import rule_identity
from service.rule_alerts import RuleProgram

log = logging.getLogger("cep.service")
AUDIT_KEPT = 1000  # records in Redis
RECENT_KEPT = 100  # records in memory, for /deployments

AuditRecord = dict[str, Any]


def rule_files(paths: Sequence[Path]) -> list[Path]:
    """The rule files (and their test sidecars) under `paths`, sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += [p for p in path.rglob("*") if p.is_file() and p.suffix in RULE_SUFFIXES]
        elif path.exists():
            found.append(path)
    return sorted(found)


def digest_of(paths: Sequence[Path]) -> str:
    """A hash of the rule files' names and contents: changes when any file does."""
    digest = hashlib.sha256()
    for path in rule_files(paths):
        try:
            content = path.read_bytes()
        except OSError:
            continue  # removed while listing: the next look sees the final state
        digest.update(str(path).encode() + b"\0" + content + b"\0")
    return digest.hexdigest()[:16]


def all_rules(compiled: CompiledRules) -> dict[str, RuleProgram]:
    every: list[RuleProgram] = [*compiled.programs, *compiled.sql_programs]
    return {p.info.name: p for p in every}


@dataclass(frozen=True)
class RuleChange:
    """One rule's change between two rule sets."""

    rule: str
    outcome: str  # added, enabled, changed, updated (metadata only), disabled, removed
    old_version: int | None
    new_version: int | None

    @property
    def keeps_partial_matches(self) -> bool:
        return self.outcome == "updated"


def rule_changes(old: CompiledRules, new: CompiledRules) -> list[RuleChange]:
    """What differs, rule by rule (enabled rules only run; disabled ones are listed)."""
    before, after = all_rules(old), all_rules(new)
    changes: list[RuleChange] = []
    for name in sorted(before.keys() | after.keys()):
        a, b = before.get(name), after.get(name)
        a_on, b_on = bool(a and a.info.enabled), bool(b and b.info.enabled)
        old_version = a.info.version if a else None
        new_version = b.info.version if b else None
        if a_on and b is None:
            outcome = "removed"
        elif a_on and not b_on:
            outcome = "disabled"
        elif b_on and a is None:
            outcome = "added"
        elif b_on and not a_on:
            outcome = "enabled"
        elif a is not None and b is not None and a_on and b_on:
            if rule_identity(a) != rule_identity(b):
                outcome = "changed"
            elif a.info != b.info:
                outcome = "updated"
            else:
                continue
        else:
            continue  # disabled before and after
        changes.append(RuleChange(name, outcome, old_version, new_version))
    return changes


@dataclass(frozen=True)
class Candidate:
    """A validated rule set, its kernels built, waiting for the loop to swap it in."""

    rules: CompiledRules
    digest: str
    changes: tuple[RuleChange, ...]


@dataclass
class DeploymentStatus:
    """What `/deployments` shows."""

    digest: str
    loaded_at: str
    last_attempt: AuditRecord | None = None
    recent: deque[AuditRecord] = field(default_factory=lambda: deque(maxlen=RECENT_KEPT))

    def as_json(self, current: CompiledRules) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "loaded_at": self.loaded_at,
            "rules": {
                name: {"version": p.info.version, "enabled": p.info.enabled}
                for name, p in sorted(all_rules(current).items())
            },
            "last_attempt": self.last_attempt,
            "recent": list(self.recent),
        }


def _now_iso() -> str:
    return datetime.now(tz=UTC).isoformat(timespec="milliseconds")


class RuleDeployer:
    """Watches the rule files and prepares deployments; `take` hands them to the loop.

    `build` compiles the kernels of a candidate rule set (raising on failure); `audit_sink`
    stores an audit record durably (the service pushes it to Redis).
    """

    def __init__(
        self,
        paths: Sequence[Path],
        current: CompiledRules,
        build: Callable[[CompiledRules], None],
        on_failure: Callable[[], None],
        audit_sink: Callable[[AuditRecord], None],
        interval_s: float,
        wake: threading.Event | None = None,
    ):
        self.paths = list(paths)
        self.current = current
        self._build = build
        self._on_failure = on_failure
        self._audit_sink = audit_sink
        self.interval_s = interval_s
        self._seen = digest_of(self.paths)
        self.status = DeploymentStatus(self._seen, _now_iso())
        self._lock = threading.Lock()
        self._ready: Candidate | None = None
        self._wake = wake or threading.Event()  # set by SIGHUP
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="cep-rules", daemon=True)

    # ------------------------------------------------------------------ watcher thread
    def start(self) -> RuleDeployer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def request(self) -> None:
        """Look at the rule files now (SIGHUP)."""
        self._wake.set()

    def _watch(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval_s or None)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.check()
            except Exception:  # a bug here must not kill the watcher silently
                log.exception("checking the rule files failed")

    def check(self) -> Candidate | None:
        """Load the rule files if they changed; a validated candidate, or None."""
        digest = digest_of(self.paths)
        if digest == self._seen:
            return None
        self._seen = digest
        log.info("rule files changed (%s); validating", digest)
        try:
            compiled = load_paths(self.paths).compile()
        except CepError as exc:
            self._reject(digest, "the rules have errors", exc.render())
            return None
        except OSError as exc:
            self._reject(digest, "the rule files cannot be read", str(exc))
            return None
        if compiled.schema != self.current.schema:
            self._reject(
                digest,
                "the stream declarations changed",
                "streams fix the inputs' decoders and checkpoints: restart the service to "
                "change them",
            )
            return None
        if not any(p.info.enabled for p in all_rules(compiled).values()):
            self._reject(digest, "no rule is enabled", "the service needs at least one rule")
            return None
        changes = tuple(rule_changes(self.current, compiled))
        if not changes:
            log.info("rule files changed, but no rule did: nothing to deploy")
            return None
        try:
            self._build(compiled)
        except Exception as exc:
            log.exception("building the kernels of the new rules failed")
            self._reject(digest, "building the rules' kernels failed", repr(exc))
            return None
        candidate = Candidate(compiled, digest, changes)
        with self._lock:
            self._ready = candidate
        return candidate

    # ------------------------------------------------------------------ loop thread
    def take(self) -> Candidate | None:
        """The candidate waiting to be swapped in, once."""
        with self._lock:
            candidate, self._ready = self._ready, None
        return candidate

    def applied(self, candidate: Candidate, dropped: dict[str, int]) -> list[AuditRecord]:
        """Record a swapped-in deployment: an audit record per changed rule."""
        self.current = candidate.rules
        at = _now_iso()
        records = []
        for change in candidate.changes:
            record: AuditRecord = {
                "event": "rule_deployment",
                "time": at,
                "rule": change.rule,
                "old_version": change.old_version,
                "new_version": change.new_version,
                "outcome": change.outcome,
                "partial_matches": "kept" if change.keeps_partial_matches else "dropped",
                "dropped_partial_matches": dropped.get(change.rule, 0),
                "digest": candidate.digest,
            }
            if change.outcome == "changed" and change.old_version == change.new_version:
                record["warning"] = "the rule changed but its version did not"
            records.append(record)
        self.status.digest, self.status.loaded_at = candidate.digest, at
        self._record(records)
        return records

    def failed(self, candidate: Candidate, reason: str) -> None:
        """The swap itself failed (the old rules keep running)."""
        self._reject(candidate.digest, "swapping the rules in failed", reason)

    # ------------------------------------------------------------------ internals
    def _reject(self, digest: str, reason: str, details: str) -> None:
        self._on_failure()
        record: AuditRecord = {
            "event": "rule_deployment",
            "time": _now_iso(),
            "rule": None,
            "outcome": "rejected",
            "reason": reason,
            "diagnostics": details,
            "files": [str(p) for p in rule_files(self.paths)],
            "digest": digest,
        }
        log.error(
            "rule deployment rejected: %s; the previous rules keep running\n%s", reason, details
        )
        self._record([record])

    def _record(self, records: Iterable[AuditRecord]) -> None:
        for record in records:
            log.info("audit: %s %s", record["outcome"], record["rule"], extra={"audit": record})
            self.status.last_attempt = record
            self.status.recent.append(record)
            try:
                self._audit_sink(record)
            except Exception as exc:
                log.warning("audit record not stored (%s); it is in the log", exc)


class RuleSwapper(Protocol):
    """What `deploy_waiting` needs of `service.app.Service`."""

    def apply_rules(self, rules: CompiledRules) -> dict[str, int]: ...


def deploy_waiting(
    deployer: RuleDeployer,
    service: RuleSwapper,
    on_swapped: Callable[[CompiledRules], None],
    on_success: Callable[[], None],
) -> list[AuditRecord]:
    """On the loop thread, between two batches: swap in the waiting candidate, if any."""
    candidate = deployer.take()
    if candidate is None:
        return []
    try:
        dropped = service.apply_rules(candidate.rules)
    except Exception as exc:
        log.exception("swapping the new rules in failed; the previous rules keep running")
        deployer.failed(candidate, repr(exc))
        return []
    on_swapped(candidate.rules)
    on_success()
    return deployer.applied(candidate, dropped)
