"""Start, run and stop the daemon, with signal handling and the metrics server."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server

from cep.errors import CepError
from cep.loader import load_paths
from service.app import Service
from service.config import ConfigError, ServiceConfig, load_config

log = logging.getLogger("cep.service")


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by the first SIGINT/SIGTERM; a second SIGINT forces exit."""
    stop = threading.Event()
    previous: dict[signal.Signals, Any] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        log.info("stopping (signal %d); press Ctrl+C again to force", signum)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def rule_paths(config: ServiceConfig) -> list[Path]:
    if config.rules:
        return [Path(p) for p in config.rules]
    from service.cli import library_path

    return [library_path()]


def serve(
    config: ServiceConfig,
    stop: threading.Event,
    duration: float | None = None,
    on_alert: Callable[[dict[str, Any]], None] | None = None,
    on_tick: Callable[[Service], None] | None = None,
) -> int:
    """Run until `stop` is set or `duration` seconds have passed."""
    compiled = load_paths(rule_paths(config)).compile()
    registry = CollectorRegistry()
    if config.metrics.port:
        start_http_server(config.metrics.port, addr=config.metrics.host, registry=registry)
        log.info("metrics on http://%s:%d/metrics", config.metrics.host, config.metrics.port)
    service = Service(config, compiled, registry=registry, on_alert=on_alert)
    deadline = None if duration is None else time.monotonic() + duration
    try:
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            service.run_once()
            if on_tick is not None:
                on_tick(service)
    finally:
        service.close()
    return 0


def run_service(config_path: str) -> int:
    try:
        config = load_config(config_path)
        with stop_on_signals() as stop:
            return serve(config, stop)
    except ConfigError as exc:
        log.error("%s", exc)
        return 1
    except CepError as exc:
        log.error("the rules have errors; fix them and restart:\n%s", exc.render())
        return 1
