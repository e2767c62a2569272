"""Run rule text on a list of events with the reference engine; read matches as event names.

Events look like FlinkCEP's ITCase events, `Event(id, "a", price)`: a dict with a `name`
(unique, e.g. "a1"), a `kind` (the name without its trailing digits, "a") that conditions
test, a `price`, a key `k` and an event time `ts` in milliseconds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cep.compiler import compile_rules
from cep.parser import parse_text
from nfa.batch import StringPool, batch_from_records
from nfa.engine import Engine
from nfa.reference import EngineConfig, ReferenceEngine
from nfa.results import EngineOutput, Match

Event = dict[str, object]
FIELDS = "k: string, name: string, kind: string, price: float, ts: timestamp"


def stream(out_of_order: str = "0s") -> str:
    return f"stream s key k time ts out_of_order {out_of_order} fields {{ {FIELDS} }}\n"


def ev(name: str, ts: int | None = None, price: float = 0.0, k: str = "k1") -> Event:
    """One event; without `ts` it gets its position in the input (1, 2, ...) as its time."""
    out: Event = {"k": k, "name": name, "kind": re.sub(r"\d+$", "", name), "price": price}
    if ts is not None:
        out["ts"] = ts
    return out


def evs(*names: str, k: str = "k1") -> list[Event]:
    """Events by name, one per millisecond in the given order."""
    return [ev(n, k=k) for n in names]


def kind(*kinds: str) -> str:
    """The condition `kind == "a"` (or `kind in [...]` for several)."""
    if len(kinds) == 1:
        return f'kind == "{kinds[0]}"'
    return "kind in [" + ", ".join(f'"{x}"' for x in kinds) + "]"


def rule(
    pattern: str,
    where: dict[str, str] | None = None,
    *,
    within: str | None = None,
    skip: str | None = None,
    timeout: bool = False,
    out_of_order: str = "0s",
    name: str = "r",
) -> str:
    """A whole rule file: the stream `s` and one rule over it.

    `where` may name stages the pattern lacks (shared condition tables); they are left out.
    """
    where = {s: c for s, c in (where or {}).items() if re.search(rf"\b{s}\b", pattern)}
    lines = [stream(out_of_order), f"rule {name} from s", f"  pattern {pattern}"]
    if where:
        lines.append("  where " + "\n        ".join(f"{s}: {c}" for s, c in where.items()))
    if within:
        lines.append(f"  within {within}")
    if skip:
        lines.append(f"  skip {skip}")
    if timeout:
        lines.append('  on timeout emit to "t" { }')
    return "\n".join(lines) + "\n"


@dataclass
class Result:
    matches: list[list[str]] = field(default_factory=list)  # event names, emission order
    match_times: list[int] = field(default_factory=list)
    match_keys: list[str] = field(default_factory=list)
    match_stages: list[list[tuple[str, str]]] = field(default_factory=list)  # (stage, event)
    timeouts: list[list[str]] = field(default_factory=list)
    timeout_times: list[int] = field(default_factory=list)
    late: list[str] = field(default_factory=list)
    output: EngineOutput = field(default_factory=EngineOutput)


def run(
    src: str,
    *batches: Sequence[Event],
    finish: bool = True,
    config: EngineConfig | None = None,
) -> Result:
    """Feed each batch to `ReferenceEngine.process`, then `finish()` (the final watermark).

    The same input also goes through the product engine (`nfa.engine.Engine`), whose output
    must be identical: every semantic case is a differential test too.
    """
    rules = compile_rules(parse_text(src, "test.cep"))
    pool, keys = StringPool(), StringPool()
    engine = ReferenceEngine(rules.programs, pool, config)
    product = Engine(rules.programs, pool, config)
    names: list[str] = []
    clock = 0
    out, product_out = EngineOutput(), EngineOutput()
    for batch in batches:
        records = []
        for event in batch:
            clock += 1
            record = dict(event)
            record.setdefault("ts", clock)
            records.append(("s", record))
        columns = batch_from_records(rules.schema, records, pool, keys, len(names))
        out.extend(engine.process(columns))
        product_out.extend(product.process(columns))
        names.extend(str(e["name"]) for e in batch)
    if finish:
        out.extend(engine.finish())
        product_out.extend(product.finish())
    assert product_out == out, "the product engine disagrees with the reference engine"
    stage_names = [p.stage_names for p in rules.programs]

    def named(m: Match) -> list[str]:
        return [names[e.seq] for e in m.events]

    result = Result(output=out)
    for m in out.matches:
        result.matches.append(named(m))
        result.match_times.append(m.time)
        result.match_keys.append(keys.value(m.key))
        result.match_stages.append([(stage_names[m.rule][e.stage], names[e.seq]) for e in m.events])
    for m in out.timeouts:
        result.timeouts.append(named(m))
        result.timeout_times.append(m.time)
    result.late = [names[e.seq] for e in out.late]
    return result


def matches(src: str, *batches: Sequence[Event]) -> list[list[str]]:
    """The matches' event names, in emission order."""
    return run(src, *batches).matches


def bag(found: Iterable[Sequence[str]]) -> list[list[str]]:
    """A sorted multiset of matches, for where FlinkCEP leaves the order unspecified."""
    return sorted(list(m) for m in found)
