"""`cep trace`: why did (or didn't) a rule fire for one key? A readable step-by-step walk.

The rule runs on the reference engine over every event of the input (every stream, so
watermarks are those of a replay), and `nfa.trace` records the walk for the one key. Here
that walk becomes text an analyst can follow: each event of the key with the fields the
rule reads, each partial match tried on it, each edge with the condition that decided it
and the values it read, and what became of the partial match. For example:

    event #3 txns id=e3 amount=40.0 ts=2026-01-01T10:01:30Z
      partial match [small×2] (#1 #2) in state small:
        take 'small' failed: (amount < 5.0) with amount=40.0
        → partial match dropped (strict contiguity: the key's next event had to be taken)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from cep.errors import CepError
from cep.loader import load_paths
from nfa import expr as ir
from nfa.batch import StringPool
from nfa.program import Program
from nfa.reference import END_OF_TIME
from nfa.trace import TraceEngine
from nfa.trace_entries import (
    Capped,
    Condition,
    EdgeTrial,
    Emitted,
    Ending,
    Entry,
    Expired,
    Finished,
    HeldBack,
    Late,
    Pruned,
    Released,
    RunView,
    Step,
    Watermark,
    duration,
    iso,
)
from service.replay_input import EventReader, InputEvent, batches, check_files

EXIT_OK, EXIT_FAILED = 0, 1
Numbered = Mapping[int, tuple[int, InputEvent]]  # seq -> (number within the key, event)


class TraceError(ValueError):
    """The trace cannot run as asked (an unknown rule)."""


def trace(
    rules_paths: Sequence[str | Path], rule: str, key: str, event_files: Sequence[str | Path]
) -> str:
    """The walk of `rule` for `key` over `event_files`, as text."""
    check_files(event_files)
    compiled = load_paths(rules_paths).compile()
    try:
        program = compiled.program(rule)
    except KeyError:
        names = ", ".join(p.info.name for p in compiled.programs)
        raise TraceError(f"no rule named {rule!r} (rules: {names})") from None
    schema = compiled.schema
    pool, keys = StringPool(), StringPool()
    tracer = TraceEngine(program, pool, keys.intern(key))
    streams = {schema.streams[s].name: schema.streams[s] for s in program.stage_streams}
    reader = EventReader(schema)
    mine: dict[int, tuple[int, InputEvent]] = {}
    seq = 0

    def of_key(event: InputEvent) -> bool:
        stream = streams.get(event.stream)
        return stream is not None and str(event.values.get(stream.key)) == key

    for batch, chunk in batches(reader.read(event_files), schema, pool, keys, split=of_key):
        for event in chunk:
            if of_key(event):
                mine[seq] = (len(mine) + 1, event)
            seq += 1
        tracer.process(batch)
    tracer.finish()
    return Renderer(program, key, mine).render(tracer.entries, seq, reader.rejected)


class Renderer:
    """Turns trace entries into indented lines."""

    def __init__(self, program: Program, key: str, events: Numbered) -> None:
        self.program = program
        self.key = key
        self.events = events
        columns = program.schema.columns
        read = {
            n.column for atom in program.atoms for n in ir.walk(atom) if isinstance(n, ir.Field)
        }
        self.read_fields = [(columns[c].stream, columns[c].field) for c in sorted(read)]

    def render(self, entries: Iterable[Entry], total: int, rejected: int) -> str:
        p = self.program
        streams = sorted({p.schema.streams[s].name for s in p.stage_streams})
        lines = [f"trace of rule {p.info.name} v{p.info.version} for key {self.key!r}"]
        window = f"window {duration(p.window_ms)}" if p.window_ms else "no window"
        lines.append(f"  {window}, skip {p.skip.name.lower()}, streams {', '.join(streams)}")
        lines.extend(f"  condition [{i}] {self._atom(i)}" for i in range(len(p.atoms)))
        lines.append(f"  {len(self.events)} event(s) of the key among {total:,} read")
        if not self.events:
            keys = ", ".join(
                f"{s.name}.{s.key}" for s in map(p.schema.streams.__getitem__, set(p.stage_streams))
            )
            lines.append(f"  no event has {keys} = {self.key!r}: check the key and the files")
        if rejected:
            lines.append(f"  {rejected:,} rejected row(s) were not read (see `cep replay`)")
        alerts, furthest = 0, RunView("", ())
        for entry in entries:
            lines.extend(self.entry(entry))
            if isinstance(entry, Emitted) and not entry.timed_out:
                alerts += 1
            for run in _runs(entry):
                if len(run.taken) > len(furthest.taken):
                    furthest = run
        if alerts:
            lines.append(f"result: {alerts} alert(s) for key {self.key!r}")
        else:
            lines.append(f"result: no alert for key {self.key!r}")
            if furthest.taken:
                lines.append(
                    f"  the furthest partial match was {self.run(furthest)} in state "
                    f"{furthest.state}; see above what ended it"
                )
        return "\n".join(lines)

    def _atom(self, index: int) -> str:
        from nfa.explain import expression

        return expression(self.program, self.program.atoms[index])

    # ------------------------------------------------------------------ pieces
    def event(self, seq: int) -> str:
        number, event = self.events.get(seq, (0, None))
        if event is None:
            return f"event seq {seq}"
        stream = self.program.schema.streams[self.program.schema.stream_index(event.stream)]
        stream_index = self.program.schema.stream_index(event.stream)
        parts = [f"event #{number} {event.stream} id={event.event_id}"]
        for s, name in self.read_fields:
            if s == stream_index and name != stream.time_field:
                parts.append(f"{name}={_value(event.values.get(name))}")
        parts.append(f"ts={iso(event.time(self.program.schema))}")
        return " ".join(parts)

    def number(self, seq: int) -> str:
        return f"#{self.events[seq][0]}" if seq in self.events else f"seq {seq}"

    def run(self, run: RunView) -> str:
        return f"{run.label()} ({' '.join(self.number(seq) for _, seq in run.taken)})"

    def entry(self, entry: Entry) -> list[str]:
        if isinstance(entry, Released):
            head = self.event(entry.seq)
            return [head] if entry.runs else [head, "  no partial match before it"]
        if isinstance(entry, Step):
            return self.step(entry)
        if isinstance(entry, Expired):
            ended = iso(entry.start_ts + entry.window_ms)
            first = self.number(entry.run.taken[0][1])
            if entry.absence:
                return [
                    f"  {_when(entry.now)}: absence completed: nothing forbidden within "
                    f"{duration(entry.window_ms)} after {first} (window ended {ended})"
                ]
            return [
                f"  {_when(entry.now)}: partial match {self.run(entry.run)} timed out: the "
                f"window of {duration(entry.window_ms)} from {first} ended {ended} → dropped"
            ]
        if isinstance(entry, Emitted):
            fields = ", ".join(f"{k}: {_value(v)}" for k, v in entry.fields)
            what = "TIMEOUT reported" if entry.timed_out else "ALERT: match"
            return [f"  {what} {self.run(entry.run)} at {iso(entry.time)} {{{fields}}}"]
        if isinstance(entry, Pruned):
            what = "completed match" if entry.completed else "partial match"
            return [
                f"  {what} {self.run(entry.run)} pruned by skip {entry.skip} after "
                f"the match {self.run(entry.by)}"
            ]
        if isinstance(entry, HeldBack):
            waiting = self.run(entry.waiting_for) if entry.waiting_for else "(none)"
            return [
                f"  match {self.run(entry.run)} completed; held back by the skip strategy "
                f"until the earlier partial match {waiting} ends"
            ]
        if isinstance(entry, Capped):
            return [f"  {entry.dropped} oldest partial match(es) dropped: over {entry.limit}"]
        if isinstance(entry, Late):
            return [
                f"{self.event(entry.seq)}: LATE: at or below the {entry.stream} watermark "
                f"{iso(entry.watermark)} → not matched (sent to the late-event output)"
            ]
        if isinstance(entry, Watermark):
            return [f"watermark {iso(entry.now)}: time advances without an event of the key"]
        if isinstance(entry, Ending):
            return ["end of input: a final watermark fires every pending timer"]
        assert isinstance(entry, Finished)
        return [
            f"  still open at the end (no window closes it): {self.run(r)} in state {r.state}"
            for r in entry.open_runs
        ]

    def step(self, step: Step) -> list[str]:
        start = step.run is None
        edges = [e for e in step.edges if not (start and e.action == "ignore")]
        outcome = self.outcome(step)
        if start:
            if len(edges) == 1:
                return [f"  start: {self.edge(edges[0])} {outcome}"]
            return ["  start:", *(f"    {self.edge(e)}" for e in edges), f"    {outcome}"]
        assert step.run is not None
        head = f"  partial match {self.run(step.run)} in state {step.run.state}:"
        return [head, *(f"    {self.edge(e)}" for e in edges), f"    {outcome}"]

    def edge(self, edge: EdgeTrial) -> str:
        if edge.action == "take":
            verb = f"take '{edge.stage}'"
        elif edge.action == "ignore":
            verb = "ignore the event"
        elif edge.target_kind == "stop":
            verb = f"forbidden event check ({edge.target})"
        else:
            verb = f"proceed to {edge.target}"
        why = "; ".join(_condition(c, edge.held) for c in edge.because) or "always"
        return f"{verb} {'held' if edge.held else 'failed'}: {why}"

    def outcome(self, step: Step) -> str:
        parts: list[str] = []
        if step.stopped is not None:
            parts.append(
                f"→ discarded by the negation: the forbidden event reached stop state {step.stopped}"
            )
        parts.extend(f"→ completes the match {self.run(r)}" for r in step.completed)
        if step.stopped is None:
            for r in step.continues:
                if step.run is None:
                    parts.append(f"→ new partial match {self.run(r)} in state {r.state}")
                elif r == step.run:
                    parts.append(f"→ kept in state {r.state} (event ignored)")
                else:
                    parts.append(f"→ continues as {self.run(r)} in state {r.state}")
        if not parts:
            if step.run is None:
                return "→ no new partial match"
            why = "strict contiguity: the key's next event had to be taken"
            return f"→ partial match dropped ({why if step.strict else 'no edge held'})"
        return "; ".join(parts)


def _runs(entry: Entry) -> list[RunView]:
    if isinstance(entry, Step):
        return [*([entry.run] if entry.run else []), *entry.continues]
    if isinstance(entry, Released):
        return list(entry.runs)
    return []


def _when(now: int) -> str:
    return "at the end of input" if now >= END_OF_TIME else f"at {iso(now)}"


def _condition(c: Condition, held: bool) -> str:
    agrees = c.value == ("true" if held else "false")
    text = c.text if agrees else f"{c.text} is {c.value}"
    reads = ", ".join(f"{name}={value}" for name, value in c.reads)
    return f"{text} with {reads}" if reads else text


def _value(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    return repr(value)


def add_trace_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `cep trace`."""
    parser.add_argument(
        "--rules",
        action="append",
        metavar="PATH",
        help="rule files or folders, repeatable (default: the shipped library)",
    )
    parser.add_argument("--rule", required=True, metavar="NAME", help="the rule to trace")
    parser.add_argument("--key", required=True, metavar="KEY", help="the key (card, account...)")
    parser.add_argument(
        "--events",
        nargs="+",
        required=True,
        metavar="FILE",
        help="event files: .jsonl .csv .parquet",
    )


def main_trace(args: argparse.Namespace) -> int:
    """`cep trace`: print the walk of one rule for one key; exit code."""
    from service.cli import library_path

    try:
        print(trace(args.rules or [library_path()], args.rule, args.key, args.events))
    except CepError as exc:
        print(exc.render(), file=sys.stderr)
        return EXIT_FAILED
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
