"""Per-rule layouts, decision tables and due keys of the Numba engine.

Decision tables replace the interpreted decision graph for states whose edges read only
pure atoms; the differential test with tables switched off keeps the interpreted path
checked against the reference too.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_engine_differential import SEEDS, _run, event
from test_engine_features import CARD_TESTING, _rules

from nfa import engine_decide
from nfa.batch import StringPool, batch_from_records
from nfa.engine import Engine
from nfa.engine_decide import decision_tables
from nfa.kernel_keys import key_row
from nfa.kernel_layout import layout
from nfa.kernel_skip import due_rows
from nfa.kernel_store import DUE_NEVER, K_DUE
from nfa.reference import EngineConfig


def test_card_testing_layout_keeps_only_what_is_read() -> None:
    program = _rules(CARD_TESTING).programs[0]
    lay = layout(program)
    # count(small) and sum(small.amount) are read by the output only: no per-run slots
    assert lay.aggregates == ()
    assert (lay.n_int, lay.n_float, lay.n_count, lay.n_ok) == (0, 0, 0, 0)
    amount = program.schema.column("txns", "amount")
    assert lay.columns == (program.schema.columns.index(amount),)
    assert lay.ev_float.tolist() == [amount.slot] and lay.ev_int.tolist() == []


def test_card_testing_states_all_have_tables() -> None:
    program = _rules(CARD_TESTING).programs[0]
    tbase, tatom, toff, tdec = decision_tables(program, np.arange(len(program.atoms)))
    for state in range(program.n_states):
        assert tbase[2 * state] >= 0
    assert tbase[2 * program.start_state + 1] >= 0
    # the start run ignores an event that is not small: no decision
    start = tbase[2 * program.start_state + 1]
    assert toff[start] == toff[start + 1]
    assert tdec.shape[1] == 3 and tatom.shape[1] == engine_decide.MAX_TABLE_ATOMS


def test_iterative_atoms_get_no_table() -> None:
    program = _rules(CARD_TESTING).programs[0]
    tbase, *_ = decision_tables(program, -1 - np.arange(len(program.atoms)))
    assert (tbase[[2 * s for s in range(program.n_states) if program.edges_of(s)]] < 0).all()


def test_due_rows_are_those_whose_first_window_may_close() -> None:
    rules = _rules(CARD_TESTING)
    pool, keys = StringPool(), StringPool()
    rows = [("txns", {"card_id": c, "amount": 1.0, "ts": t}) for c, t in [("a", 0), ("b", 300_000)]]
    engine = Engine(rules.programs, pool)
    engine.process(batch_from_records(rules.schema, rows, pool, keys))
    state = engine.states[0]
    a, b = keys.lookup("a"), keys.lookup("b")
    assert state[9][key_row(state, a), K_DUE] != DUE_NEVER
    assert state[9][key_row(state, b), K_DUE] != DUE_NEVER
    ra, rb = key_row(state, a), key_row(state, b)
    assert ra not in due_rows(state, 500_000) and rb not in due_rows(state, 500_000)
    assert ra in due_rows(state, 600_000) and rb not in due_rows(state, 600_000)
    assert rb in due_rows(state, 900_000)
    engine.finish()
    assert (engine.states[0][9][:, K_DUE] == DUE_NEVER).all()


@pytest.fixture
def no_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_decide, "MAX_TABLE_ATOMS", 0)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, SEEDS - 1),
    events=st.lists(event, max_size=30),
    cuts=st.lists(st.integers(0, 30), max_size=3),
)
def test_interpreted_decisions_equal_reference(
    no_tables: None,
    seed: int,
    events: list[tuple[int, int | None, float | None, int]],
    cuts: list[int],
) -> None:
    _run(seed, events, cuts, 1, True, EngineConfig())
