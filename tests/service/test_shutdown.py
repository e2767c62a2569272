"""Shutdown of the daemon: the watchdog and the final checkpoint (without Kafka)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from service.runner import ShutdownWatchdog, final_checkpoint


def test_watchdog_exits_when_shutdown_hangs_and_not_when_it_finishes() -> None:
    stop, exits = threading.Event(), list[int]()
    hung = ShutdownWatchdog(stop, 0.05, exit=exits.append).start()
    stop.set()
    hung._thread.join(5)
    assert exits == [1]
    quick = ShutdownWatchdog(stop, 5, exit=exits.append).start()
    quick.finish()
    assert exits == [1] and not quick._thread.is_alive()
    idle = ShutdownWatchdog(threading.Event(), 0.01, exit=exits.append).start()
    idle.finish()  # never stopped: ends without exiting
    assert exits == [1] and not idle._thread.is_alive()


def test_final_checkpoint_reports_what_stayed_uncommitted() -> None:
    clean = SimpleNamespace(dirty=True)
    stuck = SimpleNamespace(dirty=True)

    def checkpoint() -> None:
        clean.dirty = False

    service = SimpleNamespace(partitions={0: clean, 1: stuck}, checkpoint=checkpoint)
    assert final_checkpoint(service) is False  # type: ignore[arg-type]
    stuck.dirty = False
    assert final_checkpoint(service) is True  # type: ignore[arg-type]

    def failing() -> None:
        raise RuntimeError("commit failed")

    stuck.dirty = True
    broken = SimpleNamespace(partitions={1: stuck}, checkpoint=failing)
    assert final_checkpoint(broken) is False  # type: ignore[arg-type]
