"""The card-testing rule here and as Flink SQL MATCH_RECOGNIZE, side by side, on one file.

`python -m benchmarks.flink_match_recognize [--events N] [--cards K] [--flink-python PY]`

Both read the same generated CSV (card, amount, ts in ms, in time order):
- here: the strict card-testing rule (`small{3,} consecutive next big`, within 10m, skip
  past last) on the product engine, timed from the file and from columns in memory;
- Flink: `PATTERN (S{3,} B) WITHIN INTERVAL '10' MINUTE`, PARTITION BY card, ORDER BY event
  time, AFTER MATCH SKIP PAST LAST ROW, ONE ROW PER MATCH, at parallelism 1, in PyFlink's
  local mini-cluster; its peak memory is the JVM's peak resident set.
The script checks that both found the same matches (card, first and last event time) and
reports the ratios. It also runs the Flink query itself as a SQL rule of ours (it is in the
NFA subset, so it runs on the same product engine) and reports whether it found the DSL
rule's matches (`sql_rule_same_matches`); that run is not timed. Flink needs `pip install apache-flink` and Java 17 on PATH; without
them (or without `--flink-python` naming an interpreter that has them) it says so and
measures only this side.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import peak_rss_mb, report
from cep.compiler import CompiledRules, compile_rules
from cep.loader import load_text
from cep.parser import parse_text
from nfa.batch import EventBatch, StringPool
from nfa.engine import Engine

RULE = """
stream txns key card_id time ts out_of_order 0s fields { card_id: string, amount: float, ts: timestamp }
rule card_testing from txns
  pattern small{3,} consecutive next big
  where small: amount < 5.00
        big: amount > 500.00
  within 10m skip past last
  emit to "alerts" { first: first(small.ts), last: big.ts }
"""

SQL_RULE = """
streams: |
  stream txns key card_id time ts out_of_order 0s fields { card_id: string, amount: float, ts: timestamp }
rules:
  - name: card_testing_sql
    emit_to: alerts
    sql: |
      SELECT * FROM txns MATCH_RECOGNIZE (
        PARTITION BY card_id ORDER BY ts
        MEASURES FIRST(S.ts) AS first_ts, B.ts AS last_ts
        ONE ROW PER MATCH AFTER MATCH SKIP PAST LAST ROW
        PATTERN (S{3,} B) WITHIN INTERVAL '10' MINUTE
        DEFINE S AS S.amount < 5.0, B AS B.amount > 500.0
      )
"""

FLINK_JOB = r"""
import json, os, sys, time
from pyflink.table import EnvironmentSettings, TableEnvironment
path = sys.argv[1]
env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
env.get_config().set("parallelism.default", "1")
env.execute_sql(f'''CREATE TABLE txns (card STRING, amount DOUBLE, ts BIGINT,
    rt AS TO_TIMESTAMP_LTZ(ts, 3), WATERMARK FOR rt AS rt)
    WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'csv')''')
query = '''SELECT card, first_ts, last_ts FROM txns MATCH_RECOGNIZE (
    PARTITION BY card ORDER BY rt
    MEASURES FIRST(S.ts) AS first_ts, B.ts AS last_ts
    ONE ROW PER MATCH AFTER MATCH SKIP PAST LAST ROW
    PATTERN (S{3,} B) WITHIN INTERVAL '10' MINUTE
    DEFINE S AS S.amount < 5.0, B AS B.amount > 500.0)'''
started = time.perf_counter()
with env.execute_sql(query).collect() as rows:
    matches = [[r[0], int(r[1]), int(r[2])] for r in rows]
seconds = time.perf_counter() - started
peak = 0
for pid in os.listdir("/proc"):
    try:
        cmd = open(f"/proc/{pid}/cmdline", "rb").read()
        if b"java" in cmd and b"pyflink" in cmd:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) // 1024)
    except OSError:
        pass
print(json.dumps({"seconds": seconds, "matches": matches, "jvm_peak_rss_mb": peak}))
"""


def generate(path: Path, events: int, cards: int, seed: int) -> None:
    """Time-ordered transactions, unique timestamps; some cards run card-testing bursts."""
    rng = random.Random(seed)
    ts = 1_767_225_600_000
    burst: dict[int, list[float]] = {}
    with path.open("w") as out:
        for _ in range(events):
            ts += rng.randint(1, 20)
            card = rng.randrange(cards)
            if card in burst:
                amount = burst[card].pop(0)
                if not burst[card]:
                    del burst[card]
            elif rng.random() < 0.002:
                burst[card] = [round(rng.uniform(0.5, 4.9), 2) for _ in range(rng.randint(2, 5))]
                burst[card].append(round(rng.uniform(600, 2000), 2))
                amount = round(rng.uniform(0.5, 4.9), 2)
            else:
                amount = round(rng.lognormvariate(3.5, 1.0), 2)
            out.write(f"c{card},{amount},{ts}\n")


def run_here(path: Path, rules: CompiledRules | None = None) -> dict[str, Any]:
    """The rules (default: the DSL rule) on the product engine, over the CSV file."""
    rules = rules or compile_rules(parse_text(RULE))
    pool, keys = StringPool(), StringPool()
    engine = Engine(rules.programs, pool)
    started = time.perf_counter()
    cards, amounts, stamps = np.loadtxt(path, delimiter=",", dtype=str, unpack=True)
    key_ids = np.fromiter((keys.intern(c) for c in cards), np.int64, len(cards))
    n = len(cards)
    column = rules.schema.column("txns", "ts")
    ints = np.zeros((rules.schema.n_int, n), np.int64)
    ints[column.slot] = stamps.astype(np.int64)
    ints[rules.schema.column("txns", "card_id").slot] = key_ids
    floats = np.zeros((rules.schema.n_float, n), np.float64)
    floats[rules.schema.column("txns", "amount").slot] = amounts.astype(np.float64)
    batch = EventBatch(
        np.zeros(n, np.int8),
        key_ids,
        ints[column.slot].copy(),
        np.arange(n, dtype=np.int64),
        floats,
        ints,
        np.ones((len(rules.schema.columns), n), np.bool_),
    )
    loaded = time.perf_counter()
    found = []
    for start in range(0, n, 100_000):
        found.extend(engine.process(batch.slice(start, start + 100_000)).matches)
    found.extend(engine.finish().matches)
    done = time.perf_counter()
    matches = sorted([keys.value(m.key), m.events[0].ts, m.events[-1].ts] for m in found)
    return {
        "events": n,
        "events_per_s_engine": round(n / (done - loaded)),
        "events_per_s_from_file": round(n / (done - started)),
        "peak_rss_mb": peak_rss_mb(),
        "matches": matches,
    }


def run_flink(python: str, path: Path) -> dict[str, Any] | None:
    if shutil.which("java") is None:
        print("Flink side skipped: no `java` on PATH (install Java 17)", file=sys.stderr)
        return None
    probe = subprocess.run([python, "-c", "import pyflink"], capture_output=True, check=False)
    if probe.returncode:
        print(
            f"Flink side skipped: `{python}` cannot import pyflink; `pip install apache-flink` "
            "into it and pass it as --flink-python",
            file=sys.stderr,
        )
        return None
    done = subprocess.run(
        [python, "-c", FLINK_JOB, str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=7200,
    )
    if done.returncode:
        raise RuntimeError(f"the Flink job failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--cards", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--flink-python", default=sys.executable)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "txns.csv"
        generate(path, args.events, args.cards, args.seed)
        here = run_here(path)
        sql_rules = load_text(SQL_RULE, "card_testing_sql.yaml").compile()
        sql_on_nfa = [p.info.name for p in sql_rules.programs] == ["card_testing_sql"]
        sql_matches = run_here(path, sql_rules)["matches"] if sql_on_nfa else None
        flink = run_flink(args.flink_python, path)
    figures: dict[str, Any] = {k: v for k, v in here.items() if k != "matches"}
    figures["matches"] = len(here["matches"])
    figures["sql_rule_engine"] = "nfa" if sql_on_nfa else "row-pattern"
    figures["sql_rule_same_matches"] = sql_matches == here["matches"]
    if flink is not None:
        flink_rate = args.events / flink["seconds"]
        figures["flink"] = {
            "events_per_s": round(flink_rate),
            "jvm_peak_rss_mb": flink["jvm_peak_rss_mb"],
            "matches": len(flink["matches"]),
        }
        figures["same_matches"] = sorted(flink["matches"]) == here["matches"]
        figures["ratio_events_per_s_from_file"] = round(
            here["events_per_s_from_file"] / flink_rate, 2
        )
        if flink["jvm_peak_rss_mb"]:
            figures["ratio_peak_memory"] = round(here["peak_rss_mb"] / flink["jvm_peak_rss_mb"], 2)
    report("flink_match_recognize", figures)


if __name__ == "__main__":
    main()
