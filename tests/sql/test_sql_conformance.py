"""The Trino conformance suite, when it is present: the pass rate must not fall."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "tests" / "conformance" / "run_match_recognize.py"
DEFAULT = ROOT.parent / "shared" / "conformance" / "match_recognize" / "cases.json"
SUITE = Path(os.environ.get("CEP_MATCH_RECOGNIZE_CASES", DEFAULT))


@pytest.mark.skipif(not SUITE.exists(), reason="conformance suite not present")
def test_pass_rate_at_least_recorded() -> None:
    done = subprocess.run(
        [sys.executable, str(RUNNER), str(SUITE)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    last = done.stdout.strip().splitlines()[-1]
    rate = float(last.rsplit("=", 1)[1].strip().rstrip("%"))
    recorded = float((RUNNER.parent / "match_recognize_passrate.txt").read_text())
    assert rate >= recorded
