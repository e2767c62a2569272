"""The operations HTTP server of the daemon (stdlib `http.server`, in a thread).

Paths (GET):
- `/healthz`: 200 while the process serves HTTP (liveness; never needs the token);
- `/readyz`: 200 when partitions are assigned, the loop ran recently and its last batch
  was not full (caught up), else 503; the body says which condition failed;
- `/metrics`: Prometheus exposition of the registry;
- `/rules`: the loaded rules (version, enabled, shadow, cooldown, topics) as JSON;
- `/rules/{rule}/keys/{key}/partial-matches`: the live partial matches of one key;
- `/deployments`: the rule files' digest, the running versions, the last deployment attempt
  (with the diagnostics of a rejected one) and recent audit records (`service.reload`).

With a token configured every path but `/healthz` needs `Authorization: Bearer <token>`.
Fields marked sensitive in the config are masked in every answer. `ServiceBackend` answers
from a running `Service`; the server takes any object with the `Backend` methods, which is
how the tests drive it without Kafka.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import unquote, urlsplit

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from cep.compiler import CompiledRules
from nfa.program import Program
from service.collectors import (
    LoopCalls,
    NotSupported,
    StateSample,
    event_fields,
    partial_runs,
    sample_service,
)
from service.config import ServiceConfig
from service.logs import Masker, mask_value

if TYPE_CHECKING:
    from service.app import Service
    from service.partition import PartitionState
    from service.reload import RuleDeployer

log = logging.getLogger("cep.http")
READY_STALE_S = 30.0  # no loop iteration for this long: not ready
CALL_TIMEOUT_S = 5.0  # how long a request waits for the loop to answer
T = TypeVar("T")


class HttpError(Exception):
    """An answer other than 200: the status and a message for the operator."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Backend(Protocol):
    registry: CollectorRegistry

    def readiness(self) -> tuple[bool, dict[str, object]]: ...
    def rules(self) -> list[dict[str, object]]: ...
    def deployments(self) -> dict[str, object]: ...
    def partial_matches(self, rule: str, key: str) -> dict[str, object]: ...


# ---------------------------------------------------------------------- the server
class _Server(ThreadingHTTPServer):
    daemon_threads = True
    backend: Backend
    token: str | None


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        parts = [unquote(p) for p in path.strip("/").split("/")]
        try:
            if path == "/healthz":
                self._json(200, {"status": "ok"})
                return
            self._authorize()
            if path == "/readyz":
                ready, details = self.server.backend.readiness()
                self._json(200 if ready else 503, {"ready": ready, **details})
            elif path == "/metrics":
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                self._send(200, content_type, encoder(self.server.backend.registry))
            elif path == "/rules":
                self._json(200, {"rules": self.server.backend.rules()})
            elif path == "/deployments":
                self._json(200, self.server.backend.deployments())
            elif len(parts) == 5 and (parts[0], parts[2], parts[4]) == (
                "rules",
                "keys",
                "partial-matches",
            ):
                self._json(200, self.server.backend.partial_matches(parts[1], parts[3]))
            else:
                raise HttpError(404, f"no such path {path}; see docs/service.md")
        except HttpError as exc:
            self._json(exc.status, {"error": exc.message})
        except Exception:
            log.exception("HTTP %s failed", path)
            self._json(500, {"error": "internal error; see the daemon's log"})

    def _authorize(self) -> None:
        token = self.server.token
        if not token:
            return
        given = self.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise HttpError(401, "missing or wrong bearer token")

    def _json(self, status: int, body: object) -> None:
        self._send(status, "application/json", json.dumps(body, default=str).encode())

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Bearer realm="cep"')
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class OpsServer:
    """The HTTP server on its own thread; `port=0` picks a free port (see `address`)."""

    def __init__(self, backend: Backend, host: str, port: int, token: str | None = None):
        self._server = _Server((host, port), _Handler)
        self._server.backend = backend
        self._server.token = token
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="cep-http", daemon=True
        )

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> OpsServer:
        self._thread.start()
        log.info("HTTP on http://%s:%d (/metrics, /healthz, /readyz, /rules)", *self.address)
        return self

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()


# ---------------------------------------------------------------------- the service side
@dataclass(frozen=True)
class LoopStatus:
    at: float  # time.monotonic() of the iteration
    consumed: int
    full: bool  # it consumed a whole batch: more is waiting
    partitions: tuple[int, ...]


class ServiceBackend:
    """Answers the HTTP paths from a `Service` that the runner attaches once it exists."""

    def __init__(
        self,
        config: ServiceConfig,
        rules: CompiledRules,
        registry: CollectorRegistry,
        calls: LoopCalls,
        masker: Masker,
        clock: Callable[[], float] = time.time,
    ):
        self.config = config
        self.set_rules(rules)
        self.deployer: RuleDeployer | None = None
        self.registry = registry
        self.calls = calls
        self.masker = masker
        self.clock = clock
        self.service: Service | None = None
        self.phase = "starting"
        self.status: LoopStatus | None = None

    def set_rules(self, rules: CompiledRules) -> None:
        """The rules to describe (after a deployment too); replaced whole, so a request on
        another thread sees the old or the new set, never a mix."""
        self.compiled = rules
        self.programs: dict[str, Program] = {p.info.name: p for p in rules.programs}
        self.sql_programs: dict[str, Any] = {
            p.info.name: p for p in getattr(rules, "sql_programs", ())
        }

    def deployments(self) -> dict[str, object]:
        deployer = self.deployer
        if deployer is None:
            return {"watching": False, "detail": "rule deployments are not enabled"}
        return {"watching": True, **deployer.status.as_json(deployer.current)}

    def attach(self, service: Service) -> None:
        self.service, self.phase = service, "running"

    def detach(self) -> None:
        self.service, self.phase = None, "stopping"

    def iteration(self, consumed: int) -> None:
        """Called by the loop after each iteration (on the loop thread)."""
        service = self.service
        partitions = tuple(sorted(service.partitions)) if service else ()
        full = consumed >= self.config.batch.max_messages
        self.status = LoopStatus(time.monotonic(), consumed, full, partitions)

    def readiness(self) -> tuple[bool, dict[str, object]]:
        status = self.status
        details: dict[str, object] = {"phase": self.phase}
        if self.phase != "running" or status is None:
            return False, details
        age = time.monotonic() - status.at
        details.update(
            partitions=list(status.partitions),
            caught_up=not status.full,
            last_iteration_seconds_ago=round(age, 3),
        )
        ready = bool(status.partitions) and not status.full and age < READY_STALE_S
        return ready, details

    def rules(self) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        every: list[tuple[str, Any]] = [(name, p) for name, p in self.programs.items()]
        every += [(name, p) for name, p in self.sql_programs.items()]
        for name, program in sorted(every, key=lambda item: item[0]):
            info, settings = program.info, self.config.rule_settings.get(name)
            choice = self.compiled.engine(name)  # SQL rules: compiled to an NFA or not
            if isinstance(program, Program):
                language = "sql" if choice is not None else "cep"
                window_ms = program.window_ms
                streams = sorted({program.schema.streams[s].name for s in program.stage_streams})
            else:
                language, window_ms = "sql", program.within_ms or 0
                streams = [program.schema.streams[program.stream].name]
            out.append(
                {
                    "name": name,
                    "version": info.version,
                    "enabled": info.enabled,
                    "language": language,
                    "engine": choice.engine if choice is not None else "nfa",
                    "severity": info.severity,
                    "labels": list(info.labels),
                    "description": info.description,
                    "streams": streams,
                    "window_ms": window_ms,
                    "emit_topic": program.emit.topic if program.emit else None,
                    "timeout_topic": program.on_timeout.topic if program.on_timeout else None,
                    "shadow": bool(settings and settings.shadow),
                    "cooldown": settings.cooldown if settings else None,
                }
            )
        return out

    def partial_matches(self, rule: str, key: str) -> dict[str, object]:
        program = self.programs.get(rule)
        if program is None and rule in self.sql_programs:
            raise HttpError(
                501, f"rule {rule!r} is a SQL rule: its partial matches cannot be listed"
            )
        if program is None:
            raise HttpError(404, f"no rule named {rule!r}; GET /rules lists them")
        if not program.info.enabled:
            raise HttpError(404, f"rule {rule!r} is disabled: it has no partial matches")
        return self._on_loop(lambda: self._read_partial_matches(program, key))

    def sample(self) -> StateSample | None:
        """The scrape-time gauges (None before the service runs)."""
        return self._on_loop(self._sample)

    def _sample(self) -> StateSample | None:
        service = self.service
        return sample_service(service, self.clock()) if service is not None else None

    def _on_loop(self, fn: Callable[[], T]) -> T:
        try:
            return self.calls.call(fn, CALL_TIMEOUT_S)
        except TimeoutError as exc:
            raise HttpError(503, f"{exc}; try again") from None

    def _read_partial_matches(self, program: Program, key: str) -> dict[str, object]:
        service = self.service
        if service is None:
            raise HttpError(503, f"the service is {self.phase}; try again")
        index = [p.info.name for p in service.programs].index(program.info.name)
        found: list[dict[str, object]] = []
        for number, state in sorted(service.partitions.items()):
            key_id = state.keys.lookup(key)
            if key_id is None:
                continue
            try:
                runs = partial_runs(state.engine, index, key_id)
            except NotSupported as exc:
                raise HttpError(501, str(exc)) from None
            found.extend(self._describe(service, program, state, number, run) for run in runs)
        schema = program.schema
        key_sensitive = any(
            self.masker.is_sensitive(schema.streams[s].name, schema.streams[s].key)
            for s in program.stage_streams
        )
        return {
            "rule": program.info.name,
            "version": program.info.version,
            "key": mask_value(key) if key_sensitive else key,
            "partial_matches": found,
        }

    def _describe(
        self, service: Service, program: Program, state: PartitionState, number: int, run: Any
    ) -> dict[str, object]:
        from service.outputs import OFFSET_BITS

        schema = program.schema
        events = []
        for taken in run.events:
            stream = program.stage_streams[taken.stage]
            fields = event_fields(schema, stream, taken.values, state.pool, taken.kept)
            topic = service.topics[taken.seq >> OFFSET_BITS]
            offset = taken.seq & ((1 << OFFSET_BITS) - 1)
            events.append(
                {
                    "stage": program.stage_names[taken.stage],
                    "id": f"{topic}/{number}/{offset}",
                    "time": taken.ts,
                    "fields": self.masker.fields(schema.streams[stream].name, fields),
                }
            )
        described: dict[str, object] = {
            "partition": number,
            "state": program.state_names[run.state],
            "start": run.start,
            "start_iso": _iso(run.start),
            "events": events,
        }
        if program.window_ms:
            described["window_end"] = run.start + program.window_ms
        return described


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")
