"""Start, run and stop the daemon, with signal handling and the operations HTTP server.

Phases, each logged: start (HTTP server up, so /healthz answers while the rules compile;
rules compiled; Service created), run (the loop; /readyz turns ready), stop. On SIGTERM or
SIGINT the current batch finishes, then the state is checkpointed and the offsets are
committed (`Service.close`), and `serve` returns 0; a watchdog exits the process with 1
if that takes longer than `shutdown_timeout_ms`. If the loop fails, progress since the last
checkpoint is discarded (not committed): the input since then is replayed on restart.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from cep.compiler import CompiledRules
from cep.errors import CepError
from cep.loader import load_paths
from nfa.batch import StringPool
from nfa.program import Schema
from service.app import Service
from service.cli import EXIT_FAILED, EXIT_OK
from service.collectors import LoopCalls, StateCollector
from service.config import ConfigError, ServiceConfig, load_config
from service.http import OpsServer, ServiceBackend
from service.logs import Masker, configure_logging
from service.reload import AUDIT_KEPT, RuleDeployer, deploy_waiting
from service.rule_set import engine_kind

log = logging.getLogger("cep.service")


@contextmanager
def stop_on_signals(reload: threading.Event | None = None) -> Iterator[threading.Event]:
    """An event set by the first SIGINT/SIGTERM; a second SIGINT forces exit. SIGHUP sets
    `reload` (look at the rule files now)."""
    stop = threading.Event()
    previous: dict[signal.Signals, Any] = {}

    def on_hangup(signum: int, frame: FrameType | None) -> None:
        log.info("SIGHUP: looking at the rule files")
        if reload is not None:
            reload.set()

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        log.info("stopping (signal %d); press Ctrl+C again to force", signum)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
        if reload is not None:
            previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, on_hangup)
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class ShutdownWatchdog:
    """Once `stop` is set, exits the process (code 1) unless `finish()` comes in `timeout` s.

    The graceful path (finish the batch, checkpoint, commit, close the clients) can hang
    on an unreachable broker or Redis; an orchestrator would then kill the process anyway.
    """

    def __init__(
        self,
        stop: threading.Event,
        timeout: float,
        exit: Callable[[int], object] = os._exit,
    ):
        self.stop, self.timeout, self.exit = stop, timeout, exit
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="cep-watchdog", daemon=True)

    def start(self) -> ShutdownWatchdog:
        self._thread.start()
        return self

    def finish(self) -> None:
        self.done.set()
        self._thread.join(1)

    def _watch(self) -> None:
        while not self.stop.wait(0.2):
            if self.done.is_set():
                return
        if self.done.wait(self.timeout):
            return
        log.error("shutdown did not finish within %.1f s; exiting with %d", self.timeout, 1)
        logging.shutdown()
        self.exit(EXIT_FAILED)


def rule_paths(config: ServiceConfig) -> list[Path]:
    if config.rules:
        return [Path(p) for p in config.rules]
    from service.cli import library_path

    return [library_path()]


def check_sensitive_fields(config: ServiceConfig, schema: Schema) -> None:
    """Every stream and field named in `sensitive_fields` exists (a typo would leak)."""
    for stream, names in config.sensitive_fields.items():
        try:
            known = {name for name, _ in schema.streams[schema.stream_index(stream)].fields}
        except KeyError:
            streams = ", ".join(s.name for s in schema.streams)
            raise ConfigError(
                f"sensitive_fields: no stream {stream!r} in the rules; streams: {streams}"
            ) from None
        unknown = sorted(set(names) - known)
        if unknown:
            raise ConfigError(
                f"sensitive_fields.{stream}: no field(s) {', '.join(unknown)}; "
                f"fields: {', '.join(sorted(known))}"
            )


def serve(
    config: ServiceConfig,
    stop: threading.Event,
    duration: float | None = None,
    on_alert: Callable[[dict[str, Any]], None] | None = None,
    on_tick: Callable[[Service], None] | None = None,
    reload: threading.Event | None = None,
) -> int:
    """Run until `stop` is set or `duration` seconds have passed; the exit code. `reload`
    (SIGHUP) makes the rule watcher look at the rule files at once."""
    compiled = load_paths(rule_paths(config)).compile()
    check_sensitive_fields(config, compiled.schema)
    registry, calls = CollectorRegistry(), LoopCalls()
    backend = ServiceBackend(config, compiled, registry, calls, Masker(config.sensitive_fields))
    registry.register(StateCollector(backend.sample))
    host, port = config.http_address()
    watchdog = ShutdownWatchdog(stop, config.shutdown_timeout_ms / 1000).start()
    try:
        server = OpsServer(backend, host, port, config.http.token).start() if port else None
    except OSError as exc:
        watchdog.finish()
        raise ConfigError(f"cannot serve HTTP on {host}:{port} ({exc}); change http.port") from exc
    try:
        service = Service(config, compiled, registry=registry, on_alert=on_alert)
    except BaseException:
        watchdog.finish()
        if server is not None:
            server.close()
        raise
    deployer = start_deployer(config, service, backend, compiled, reload)
    try:
        code = _loop(service, backend, calls, stop, duration, on_tick)
        if code == EXIT_OK and not final_checkpoint(service):
            discard_progress(service)  # tried once; closing must not wait for it again
            code = EXIT_FAILED
    finally:
        deployer.close()
        try:
            service.close()  # (checkpoint again: a no-op when clean), close the clients
        finally:
            watchdog.finish()
            if server is not None:
                server.close()
    log.info("stopped; exit code %d", code)
    return code


def _loop(
    service: Service,
    backend: ServiceBackend,
    calls: LoopCalls,
    stop: threading.Event,
    duration: float | None,
    on_tick: Callable[[Service], None] | None,
) -> int:
    """The run phase: iterations, each followed by the HTTP server's queued questions."""
    backend.attach(service)
    calls.bind()
    deadline = None if duration is None else time.monotonic() + duration
    try:
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            consumed = service.run_once()
            if backend.deployer is not None:
                deploy_waiting(
                    backend.deployer, service, backend.set_rules, service.metrics.rule_reloads.inc
                )
            backend.iteration(consumed)
            calls.run_pending()
            if on_tick is not None:
                on_tick(service)
    except Exception:
        log.exception("the run loop failed; input since the last checkpoint will be replayed")
        discard_progress(service)
        stop.set()  # arms the shutdown watchdog for the close that follows
        return EXIT_FAILED
    except BaseException:  # a forced stop (second Ctrl+C) may have cut a batch in half
        discard_progress(service)
        raise
    finally:
        backend.detach()
        calls.unbind()
    log.info("stopping: the batch is finished; checkpointing and committing")
    return EXIT_OK


def start_deployer(
    config: ServiceConfig,
    service: Service,
    backend: ServiceBackend,
    compiled: CompiledRules,
    reload: threading.Event | None,
) -> RuleDeployer:
    """The rule watcher (`service.reload`): audit records go to Redis as well as the log."""
    audit_key = f"cep:{service.group}:deployments"

    def store(record: dict[str, Any]) -> None:
        pipe = service.redis.pipeline()
        pipe.lpush(audit_key, orjson.dumps(record))
        pipe.ltrim(audit_key, 0, AUDIT_KEPT - 1)
        pipe.execute()

    def build(rules: CompiledRules) -> None:  # compile the kernels off the loop thread
        programs = [p for p in rules.programs if p.info.enabled]
        sql = [p for p in rules.sql_programs if p.info.enabled]
        engine_kind(config.engine, rules.schema, sql)(programs, StringPool())

    deployer = RuleDeployer(
        rule_paths(config),
        compiled,
        build,
        service.metrics.rule_reload_failures.inc,
        store,
        config.rules_watch_interval_ms / 1000,
        reload,
    )
    backend.deployer = deployer
    return deployer.start()


def final_checkpoint(service: Service) -> bool:
    """Checkpoint and commit before closing; False when something stayed uncommitted
    (`Service.checkpoint` fails soft while Kafka or Redis is unreachable)."""
    try:
        service.checkpoint()
    except Exception:
        log.exception("the final checkpoint failed")
    pending = sorted(n for n, state in service.partitions.items() if state.dirty)
    if pending:
        log.error(
            "the final checkpoint failed for partition(s) %s; their input since the last "
            "commit will be replayed on restart",
            pending,
        )
    return not pending


def discard_progress(service: Service) -> None:
    """Forget that partitions changed since their checkpoint, so closing does not save or
    commit state that a failed (maybe half-processed) batch left behind."""
    for state in service.partitions.values():
        state.dirty = False


def run_service(config_path: str) -> int:
    """`cep run`: load the config (file and environment), set up logging, serve."""
    try:
        config = load_config(config_path)
        verbose = logging.getLogger().level == logging.DEBUG  # `cep -v run` wins
        level = "DEBUG" if verbose else config.log.level
        configure_logging(config.log.format, level, Masker(config.sensitive_fields))
        reload = threading.Event()
        with stop_on_signals(reload) as stop:
            return serve(config, stop, reload=reload)
    except ConfigError as exc:
        log.error("%s", exc)
        return EXIT_FAILED
    except CepError as exc:
        log.error("the rules have errors; fix them and restart:\n%s", exc.render())
        return EXIT_FAILED
