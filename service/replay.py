"""`cep replay`: run rules over recorded events, to backtest a rule before it goes live.

The events (JSON lines, CSV or Parquet; see `service.replay_input`) go through the same
engine as live input, in file order and in batches, so the same watermark rule applies:
out-of-order events are reordered within each stream's allowed lateness, late events are
reported and counted, never matched, and the end of the input is a final watermark that
fires every pending timer (absences, timeouts). Alerts have the live alert schema
(`service.alerts`), with the input events' `event_id` (or `file:line`) as event ids, so a
replayed alert has the id the live service would give it.

With ground-truth labels (the generator's JSON lines: scenario or rule, key, event_ids,
time) the report adds per rule precision, recall, alerts per day and time to alert; see
`service.replay_labels`. `compare` runs two versions of a rule set on the same input and
lists the alerts only one of them finds.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol, cast

import orjson

from cep import ast
from cep.compiler import CompiledRules, compile_rules
from cep.errors import CepError
from cep.loader import LoadedRules, load_paths
from nfa.batch import EventBatch, StringPool
from nfa.mixed import MixedEngine
from nfa.program import Program
from nfa.results import EngineOutput
from nfa.rowpattern_rule import SqlProgram
from nfa.trace_entries import iso
from service.replay_input import EventReader, InputError, batches, check_files
from service.replay_labels import (
    Label,
    LabelScore,
    format_summary,
    read_labels,
    score,
    wanted_ids,
)
from service.rule_alerts import RuleProgram, rule_alert

EXIT_OK, EXIT_FAILED = 0, 1
ENGINES = ("numba", "reference")
PROGRESS_INTERVAL_S = 0.5
Alert = dict[str, Any]


class _Engine(Protocol):
    def process(self, batch: EventBatch) -> EngineOutput: ...
    def finish(self) -> EngineOutput: ...


@dataclass
class RuleSummary:
    """What one rule did over the replay."""

    alerts: int = 0
    timeouts: int = 0
    score: LabelScore | None = None  # with labels


@dataclass
class ReplayReport:
    """Counts, per-rule results and the alerts of one replay."""

    engine: str
    events: int = 0
    rejected: int = 0
    rejected_samples: list[str] = field(default_factory=list)
    late: dict[str, int] = field(default_factory=dict)  # per stream
    rules: dict[str, RuleSummary] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)  # completed matches
    timeouts: list[Alert] = field(default_factory=list)  # `on timeout` partial matches
    first_ts: int | None = None
    last_ts: int | None = None
    seconds: float = 0.0  # reading and matching, after the engine was built
    build_seconds: float = 0.0  # building the engine (compiling kernels for numba)
    unlabelled_rules: dict[str, int] = field(default_factory=dict)  # labels of unknown rules

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def days(self) -> float | None:
        """The event time the input spans, in days (None for an instant)."""
        if self.first_ts is None or self.last_ts is None or self.last_ts == self.first_ts:
            return None
        return (self.last_ts - self.first_ts) / 86_400_000

    def summary(self) -> str:
        """The per-rule report printed at the end of `cep replay`."""
        return format_summary(self)


@dataclass
class CompareReport:
    """Alerts found by only one of two versions of a rule set on the same input."""

    old: ReplayReport
    new: ReplayReport
    only_old: list[Alert]
    only_new: list[Alert]

    def summary(self) -> str:
        lines = [
            f"old: {len(self.old.alerts)} alert(s), new: {len(self.new.alerts)} alert(s); "
            f"{len(self.only_old)} only in old, {len(self.only_new)} only in new"
        ]
        for title, alerts in (("only old", self.only_old), ("only new", self.only_new)):
            for a in alerts:
                ids = ",".join(e["id"] for e in a["events"])
                lines.append(
                    f"  {title}: {a['rule']} v{a['version']} key={a['key']} "
                    f"time={iso(a['time'])} events=[{ids}]"
                )
        return "\n".join(lines)


class Progress:
    """A one-line progress display on stderr, redrawn with \\r at most every 0.5 s.

    Nothing is printed before the first interval passes, so short replays stay quiet.
    """

    def __init__(self, enabled: bool, stream: IO[str] | None = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.started = self.last = time.perf_counter()
        self.shown = False

    def update(self, events: int, alerts: int, force: bool = False) -> None:
        now = time.perf_counter()
        if not self.enabled or (now - self.last < PROGRESS_INTERVAL_S and not force):
            return
        self.last = now
        rate = events / max(now - self.started, 1e-9)
        self.stream.write(f"\r{events:,} events  {rate:,.0f} events/s  {alerts:,} alerts ")
        self.stream.flush()
        self.shown = True

    def close(self, events: int, alerts: int) -> None:
        if self.shown:
            self.update(events, alerts, force=True)
            self.stream.write("\n")
            self.stream.flush()


def make_engine(
    name: str,
    programs: Sequence[Program],
    pool: StringPool,
    sql_programs: Sequence[SqlProgram] = (),
) -> _Engine:
    """The product engine (`numba`) or the reference engine, over `programs`; with SQL
    rules, a mixed engine holding it and the streaming row pattern engine (`nfa.mixed`)."""
    if not programs and not sql_programs:
        raise InputError("no rule to replay")
    if name == "reference":
        from nfa.reference import ReferenceEngine

        engine: Any = ReferenceEngine
    elif name == "numba":
        from nfa.engine import Engine

        engine = Engine
    else:
        raise InputError(f"unknown engine {name!r} (use {' or '.join(ENGINES)})")
    if sql_programs:
        return MixedEngine.create(programs, sql_programs, pool, engine)
    return cast(_Engine, engine(programs, pool))


def run(
    compiled: CompiledRules,
    programs: Sequence[Program],
    event_files: Sequence[str | Path],
    engine: str = "numba",
    on_alert: Callable[[Alert], None] | None = None,
    labels: Sequence[Label] = (),
    progress: bool = False,
    sql_programs: Sequence[SqlProgram] = (),
) -> ReplayReport:
    """Replay `event_files` through `programs` and `sql_programs` (compiled together in
    `compiled`)."""
    check_files(event_files)
    pool, keys = StringPool(), StringPool()
    if progress:
        print(f"building the {engine} engine for {len(programs)} rule(s)...", file=sys.stderr)
    built = time.perf_counter()
    matcher = make_engine(engine, programs, pool, sql_programs)
    schema = compiled.schema
    rules: list[RuleProgram] = [*programs, *sql_programs]  # the engine's rule order
    report = ReplayReport(engine, rules={p.info.name: RuleSummary() for p in rules})
    report.build_seconds = time.perf_counter() - built
    reader = EventReader(schema)
    ids: list[str] = []  # seq -> event id
    wanted = wanted_ids(labels)
    seen: dict[str, int] = {}  # labelled event id -> event time
    meter = Progress(progress)
    started = time.perf_counter()

    def collect(out: EngineOutput) -> None:
        for match in [*out.matches, *out.timeouts]:
            program = rules[match.rule]
            doc = rule_alert(match, program, keys.value(match.key), ids.__getitem__)
            summary = report.rules[program.info.name]
            if match.timed_out:
                summary.timeouts += 1
                report.timeouts.append(doc)
            else:
                summary.alerts += 1
                report.alerts.append(doc)
            if on_alert is not None:
                on_alert(doc)
        for late in out.late:
            name = schema.streams[late.stream].name
            report.late[name] = report.late.get(name, 0) + 1

    for batch, chunk in batches(reader.read(event_files), schema, pool, keys):
        for event in chunk:
            ids.append(event.event_id)
            ts = event.time(schema)
            report.first_ts = ts if report.first_ts is None else min(report.first_ts, ts)
            report.last_ts = ts if report.last_ts is None else max(report.last_ts, ts)
            if event.event_id in wanted:
                seen.setdefault(event.event_id, ts)
        report.events += len(chunk)
        collect(matcher.process(batch))
        meter.update(report.events, len(report.alerts))
    collect(matcher.finish())
    report.seconds = time.perf_counter() - started
    meter.close(report.events, len(report.alerts))
    report.rejected, report.rejected_samples = reader.rejected, reader.samples
    if labels:
        scores, report.unlabelled_rules = score(report.alerts, labels, report.rules, seen)
        for name, summary in report.rules.items():
            summary.score = scores.get(name, LabelScore())
    return report


@contextlib.contextmanager
def _alert_sink(out: str | Path | None) -> Iterator[Callable[[Alert], None] | None]:
    """A writer of alerts as JSON lines to `out` ('-' is stdout), or None for no output."""
    if out is None:
        yield None
        return
    with contextlib.ExitStack() as stack:
        if str(out) == "-":
            handle: IO[bytes] = sys.stdout.buffer
        else:
            handle = stack.enter_context(open(out, "wb"))

        def write(doc: Alert) -> None:
            handle.write(orjson.dumps(doc) + b"\n")

        yield write
        handle.flush()


def replay(
    rules_paths: Sequence[str | Path],
    event_files: Sequence[str | Path],
    engine: str = "numba",
    out: str | Path | None = None,
    labels: str | Path | None = None,
    progress: bool = False,
) -> ReplayReport:
    """Replay `event_files` through every rule under `rules_paths`; alerts as JSON lines to
    `out` ('-' for stdout); with `labels`, score each rule against the ground truth."""
    compiled = load_paths(rules_paths).compile()
    truth = read_labels(labels) if labels is not None else []
    with _alert_sink(out) as sink:
        return run(
            compiled,
            compiled.programs,
            event_files,
            engine,
            sink,
            truth,
            progress,
            compiled.sql_programs,
        )


def _overlay(base: LoadedRules | None, side: LoadedRules) -> tuple[ast.RuleFile, dict[str, str]]:
    """`side` on top of `base`: the side's streams, constants and rules replace the base's
    of the same name, so a file holding one edited rule can be compared with the library."""
    if base is None:
        return side.rule_file, side.sources
    mine, theirs = side.rule_file, base.rule_file
    names = {s.name for s in mine.streams}, {c.name for c in mine.consts}
    rules = {r.name for r in mine.rules}
    merged = ast.RuleFile(
        tuple(s for s in theirs.streams if s.name not in names[0]) + mine.streams,
        tuple(c for c in theirs.consts if c.name not in names[1]) + mine.consts,
        tuple(r for r in theirs.rules if r.name not in rules) + mine.rules,
    )
    return merged, {**base.sources, **side.sources}


def compare(
    old_rules_path: str | Path,
    new_rules_path: str | Path,
    event_files: Sequence[str | Path],
    base: Sequence[str | Path] = (),
    engine: str = "numba",
    progress: bool = False,
) -> CompareReport:
    """Run the rules of `old_rules_path` and of `new_rules_path` on the same events and list
    the alerts only one finds (same rule name, key, matched event ids and timed-out flag).

    With `base` (e.g. the library), each side is laid over it (`_overlay`) so the side files
    need not declare streams or constants; only the rules the side files define are run.
    """
    loaded_base = load_paths(base) if base else None
    reports: list[ReplayReport] = []
    for side_path in (old_rules_path, new_rules_path):
        side = load_paths([side_path])
        rule_file, sources = _overlay(loaded_base, side)
        compiled = compile_rules(rule_file, sources)
        names = {r.name for r in side.rule_file.rules}
        programs = [p for p in compiled.programs if p.info.name in names]
        reports.append(run(compiled, programs, event_files, engine, progress=progress))
    old, new = reports

    def identity(a: Alert) -> tuple[str, str, tuple[str, ...], bool]:
        return a["rule"], a["key"], tuple(e["id"] for e in a["events"]), a["timed_out"]

    old_ids = {identity(a) for a in [*old.alerts, *old.timeouts]}
    new_ids = {identity(a) for a in [*new.alerts, *new.timeouts]}
    only_old = [a for a in [*old.alerts, *old.timeouts] if identity(a) not in new_ids]
    only_new = [a for a in [*new.alerts, *new.timeouts] if identity(a) not in old_ids]
    return CompareReport(old, new, only_old, only_new)


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `cep replay`."""
    parser.add_argument(
        "--rules",
        action="append",
        metavar="PATH",
        help="rule files or folders, repeatable (default: the shipped library)",
    )
    parser.add_argument(
        "--events",
        nargs="+",
        required=True,
        metavar="FILE",
        help="event files: .jsonl .csv .parquet",
    )
    parser.add_argument("--out", metavar="FILE", help="write alerts as JSON lines ('-': stdout)")
    parser.add_argument("--labels", metavar="FILE", help="ground-truth labels (JSON lines)")
    parser.add_argument(
        "--compare",
        nargs=2,
        metavar=("OLD", "NEW"),
        help="run two versions of rules (laid over --rules) and list alerts only one finds",
    )
    parser.add_argument("--engine", choices=ENGINES, default="numba", help="matching engine")
    parser.add_argument("--no-progress", action="store_true", help="no progress line on stderr")


def main_replay(args: argparse.Namespace) -> int:
    """`cep replay`: print the summary (stderr when alerts go to stdout); exit code."""
    from service.cli import library_path

    rules = args.rules or [library_path()]
    progress = not args.no_progress
    try:
        if args.compare:
            old, new = args.compare
            print(compare(old, new, args.events, rules, args.engine, progress).summary())
            return EXIT_OK
        report = replay(rules, args.events, args.engine, args.out, args.labels, progress)
    except CepError as exc:
        print(exc.render(), file=sys.stderr)
        return EXIT_FAILED
    except (OSError, ValueError) as exc:  # InputError and label errors are ValueErrors
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(report.summary(), file=sys.stderr if args.out == "-" else sys.stdout)
    return EXIT_OK
