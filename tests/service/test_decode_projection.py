"""Fields no rule reads: still type-checked, but their strings are not interned."""

from __future__ import annotations

import orjson
import pytest

from cep.compiler import compile_rules
from cep.parser import parse_text
from nfa.batch import StringPool
from nfa.program import used_columns
from service.decode import ReferenceDecoder, StreamDecoder

RULES = """
stream txns key card_id time ts fields { txn_id: string, card_id: string, merchant: string, amount: float, ts: timestamp }
rule r from txns pattern a where a: merchant == "shop" and amount > 1
"""


@pytest.mark.parametrize("decoder_class", [ReferenceDecoder, StreamDecoder])
def test_unused_strings_are_checked_not_interned(decoder_class: type[ReferenceDecoder]) -> None:
    rules = compile_rules(parse_text(RULES))
    used = used_columns(rules.programs)
    assert {rules.schema.columns[c].field for c in used} == {"merchant", "amount"}
    pool, keys = StringPool(), StringPool()
    decoder = decoder_class(rules.schema, "txns", pool, keys, 10_000, used)
    values = [
        orjson.dumps(
            {"txn_id": f"t{i}", "card_id": "c1", "merchant": "shop", "amount": 2.0, "ts": i}
        )
        for i in range(100)
    ]
    values.append(
        orjson.dumps({"txn_id": 7, "card_id": "c1", "merchant": "shop", "amount": 2.0, "ts": 1})
    )
    batch, rejected = decoder.decode(values, list(range(101)), [0] * 101)
    assert len(batch) == 100
    assert [(r.index, "txn_id" in r.reason) for r in rejected] == [(100, True)]
    assert pool.lookup("t5") is None and pool.lookup("shop") is not None
    txn_id = rules.schema.columns.index(rules.schema.column("txns", "txn_id"))
    assert not batch.valid[txn_id].any()
