"""`cep demo`, the README's first command, on the real embedded broker and Redis."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_demo_prints_alerts_and_stops_by_itself() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "demo", "--duration", "20", "--rate", "800", "--metrics-port", "0"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    alerts = [line for line in done.stdout.splitlines() if line.startswith("ALERT ")]
    assert alerts, done.stdout[-2000:] + done.stderr[-2000:]
    assert "demo finished:" in done.stdout
    rules = {line.split()[1] for line in alerts}
    # Scenarios that unfold over minutes of event time (60x faster here) show up in 20 s;
    # the hour-long account takeover may not.
    assert "card_testing" in rules and len(rules) >= 3, rules
