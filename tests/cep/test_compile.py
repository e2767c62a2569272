"""Checked rules compile to NFA programs: automaton shape, typed conditions, outputs."""

from __future__ import annotations

from cep.compiler import compile_rules
from cep.parser import parse_text
from nfa import expr as ir
from nfa.explain import describe, to_dot
from nfa.program import Action, StateKind

STREAMS = """
stream txns key card_id time ts fields { card_id: string, amount: float, country: string,
  lat: float, lon: float, ts: timestamp }
stream logins key card_id time ts fields { card_id: string, device: string, ts: timestamp }
const REGION = {"FR": "EU", "US": "NA"}
"""


def compile_one(rule: str):  # type: ignore[no-untyped-def]
    (program,) = compile_rules(parse_text(STREAMS + rule)).programs
    return program


def test_strict_card_testing_automaton() -> None:
    p = compile_one(
        "rule r from txns pattern small{3,} consecutive next big within 10m skip past last"
    )
    kinds = [StateKind(int(k)) for k in p.state_kind]
    assert kinds.count(StateKind.FINAL) == 1
    # three mandatory takes, then a loop: states that TAKE into themselves
    self_loops = [
        s
        for s in range(p.n_states)
        for e in p.edges_of(s)
        if p.edge_action[e] == Action.TAKE and p.edge_target[e] == s
    ]
    assert len(self_loops) == 1
    # consecutive: no IGNORE edge except at the start state (never followed for the start run)
    ignores = [
        s for s in range(p.n_states) for e in p.edges_of(s) if p.edge_action[e] == Action.IGNORE
    ]
    assert ignores == [p.start_state]
    assert p.window_ms == 600_000 and p.skip.name == "PAST_LAST"


def test_absence_at_end_gets_a_pending_state() -> None:
    p = compile_one("rule r from txns pattern a not followed by b within 5m")
    kinds = {StateKind(int(k)) for k in p.state_kind}
    assert StateKind.PENDING in kinds and StateKind.STOP in kinds


def test_multi_stream_stages_test_their_stream() -> None:
    p = compile_one(
        "rule r from txns, logins pattern l: logins followed by t: txns where t: amount > 1 within 1h"
    )
    first, second = p.atoms[:2]
    assert isinstance(first, ir.Op) and first.op == "and"
    assert first.args[0] == ir.Op("stream_is", (), ir.Type.BOOL, (1,))
    assert isinstance(second, ir.Op) and second.args[0] == ir.Op(
        "stream_is", (), ir.Type.BOOL, (0,)
    )
    assert p.stage_streams == (1, 0)


def test_conditions_are_typed_and_aggregates_are_slots() -> None:
    p = compile_one(
        "rule r from txns pattern a+ next b within 1h\n"
        " where a: amount < 5 and sum(a.amount) < 20\n"
        '       b: REGION[country] == "EU" and distance_km(lat, lon, a.lat, a.lon) > 100\n'
        ' emit to "x" { n: count(a), first: first(a.amount), d: count_distinct(a.country) }'
    )
    assert all(atom.type is ir.Type.BOOL for atom in p.atoms)
    assert ir.reads_stages(p.atoms[0]) and ir.reads_stages(p.atoms[1])
    kinds = {(a.stage, a.kind.value) for a in p.aggregates}
    assert {(0, "sum"), (0, "last"), (0, "count"), (0, "first"), (0, "count_distinct")} <= kinds
    assert p.tables == ((("FR", "EU"), ("US", "NA")),)
    assert p.emit is not None and [name for name, _ in p.emit.fields] == ["n", "first", "d"]


def test_explain_text_and_dot() -> None:
    p = compile_one("rule r from txns pattern a next b where a: amount > 1")
    text = describe(p)
    assert "rule r v1" in text and "take" in text and "(amount > 1)" in text
    dot = to_dot(p)
    assert dot.startswith('digraph "r"') and "doublecircle" in dot


def test_fingerprint_is_stable_and_sensitive() -> None:
    a = compile_one("rule r from txns pattern a next b where a: amount > 1")
    b = compile_one("rule r from txns pattern a next b where a: amount > 1")
    c = compile_one("rule r from txns pattern a next b where a: amount > 2")
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
