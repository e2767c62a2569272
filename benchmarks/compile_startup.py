"""Compile and JIT start-up of the product engine for 1 and 100 rules, cold and cached.

`python -m benchmarks.compile_startup [--rules 1 100] [--aggregates]`

Each measurement runs in a fresh subprocess. "cold" gives it empty kernel caches
(CEP_CACHE_DIR and NUMBA_CACHE_DIR in a new temporary folder); "cached" runs again with the
caches the cold run filled, which is what a restarted daemon pays. The rules are variants
of card testing with different thresholds; with --aggregates each also reads an aggregate
of its loop, so each compiles a kernel of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from typing import Any

from benchmarks.common import report

CHILD = r"""
import json, sys, time
started = time.perf_counter()
from cep.parser import parse_text
from cep.compiler import compile_rules
from nfa.batch import StringPool
n, aggregates = int(sys.argv[1]), sys.argv[2] == "1"
text = ["stream txns key card_id time ts fields { card_id: string, amount: float, ts: timestamp }"]
for i in range(n):
    extra = f" and sum(small.amount) < {100 + i}" if aggregates else ""
    text.append(
        f"rule r{i} from txns pattern small{{3,}} consecutive next big "
        f"where small: amount < {5 + i / 1000}{extra} big: amount > {500 + i} within 10m skip past last"
    )
imported = time.perf_counter()
rules = compile_rules(parse_text("\n".join(text)))
compiled = time.perf_counter()
from nfa.engine import Engine
engine = Engine(rules.programs, StringPool())
built = time.perf_counter()
print(json.dumps({"import_s": imported - started, "language_s": compiled - imported,
                  "engine_s": built - compiled, "total_s": built - started}))
"""


def measure(rules: int, aggregates: bool, cache: str) -> dict[str, Any]:
    env = {**os.environ, "CEP_CACHE_DIR": f"{cache}/cep", "NUMBA_CACHE_DIR": f"{cache}/numba"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(rules), "1" if aggregates else "0"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=3600,
    )
    if done.returncode:
        raise RuntimeError(f"the measurement failed:\n{done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return {k: round(v, 2) for k, v in figures.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rules", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--aggregates", action="store_true")
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    for n in args.rules:
        with tempfile.TemporaryDirectory() as cache:
            figures[f"{n}_rules"] = {
                "cold": measure(n, args.aggregates, cache),
                "cached": measure(n, args.aggregates, cache),
            }
    report("compile_startup" + ("_aggregates" if args.aggregates else ""), figures)


if __name__ == "__main__":
    main()
