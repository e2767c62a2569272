"""Workload: the shipped multi-stream account-takeover chain over 100,000 accounts.

Run: `python -m benchmarks.engine_ato [--events N] [--accounts N] [--chains N] [--batch N]
[--prefix N] [--all-streams] [--any]`.

The rule is `patterns/account_takeover.yaml` (password reset, then a login from a new device
or from abroad, then a new payee, then a transfer of at least 1,000 to that payee, within
one hour, skip past last) compiled against `patterns/streams.cep`. Events: 3 million over
two hours in time order across the three streams it reads (15% account events, 35% logins,
50% transfers), background traffic (resets 20% of account events, risky logins 7%, large
transfers ~9%, each account paying 8 payees, so some chains complete by chance) plus planted
true chains on their own fresh payees, 5% of them in the first two minutes so the prefix
that the reference engine also runs holds some. Prints one JSON document (see
`benchmarks.common.report`): events/s of `Engine.process` in batches plus `finish`
(kernels loaded before timing), matches, planted chains found, peak live partial matches,
state bytes per peak partial match, event-time lag of the alerts, peak RSS, and the
product against the reference engine on a prefix (same outputs, events/s of each).

`followed by` is skip till next: a run takes the first new payee after the risky login,
so a chain with an unrelated new payee in between is (correctly) not matched and some
planted chains are missed. `--any` runs the variant with `followed by any` (skip till any:
every chain is found, runs branch). `--all-streams` puts all seven streams' columns in
every batch, as a daemon that loads all of `patterns/` does.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks.common import peak_rss_mb, report
from benchmarks.multistream import (
    EPOCH_MS,
    MINUTE_MS,
    Columns,
    build_and_memory,
    compare_prefix,
    interned,
    load_rule,
    rss_mb,
    run_product,
    time_order,
)
from cep.compiler import CompiledRules
from nfa.batch import StringPool
from nfa.engine import Engine

STREAM_MIX = {"account_events": 0.15, "logins": 0.35, "transfers": 0.50}
ACCOUNT_TYPES = {
    "payee_added": 0.40,
    "password_reset": 0.20,
    "address_change": 0.20,
    "identity_verified": 0.07,
    "mfa_passed": 0.07,
    "sim_swap": 0.03,
    "reactivated": 0.03,
}
COUNTRIES = ("GB", "FR", "DE", "ES", "IT", "NL", "PL", "IE", "US", "NG", "BR", "IN")
PAYEES, DEVICES, PAYEES_PER_ACCOUNT = 10_000, 20_000, 8
SOURCES = {
    **{f"{s}.account_id": "account" for s in STREAM_MIX},
    **{f"{s}.ts": "ts" for s in STREAM_MIX},
    "account_events.type": "type",
    "account_events.payee_id": "payee",
    "account_events.new_payee": "flag",
    "account_events.dormant_days": "days",
    "logins.device_id": "device",
    "logins.new_device": "flag",
    "logins.country": "country",
    "logins.home_country": "home",
    "transfers.amount": "amount",
    "transfers.payee_id": "payee",
    "transfers.new_payee": "flag",
    "transfers.kind": "kind",
}
Fields = dict[str, npt.NDArray[Any]]


def _empty(n: int) -> Fields:
    fields: Fields = {k: np.full(n, -1, np.int32) for k in set(SOURCES.values())}
    fields["amount"] = np.full(n, np.nan)
    fields["ts"] = np.zeros(n, np.int64)
    fields["account_ix"] = np.zeros(n, np.int64)
    fields["stream_name"] = np.zeros(n, np.int8)  # index into STREAM_MIX
    fields["planted"] = np.full(n, -1, np.int32)  # chain number on a planted cashout
    return fields


def background(
    n: int, accounts: int, span_ms: int, pool: StringPool, rng: np.random.Generator
) -> Fields:
    f = _empty(n)
    f["ts"] = EPOCH_MS + np.sort(rng.integers(0, span_ms, n))
    which = rng.choice(3, n, p=list(STREAM_MIX.values()))
    acct = rng.integers(0, accounts, n)
    f["stream_name"][:] = which
    f["account_ix"] = acct
    coin = rng.random(n)
    payee = (acct * 7919 + rng.integers(0, PAYEES_PER_ACCOUNT, n) * 104_729) % PAYEES
    payee_ids = interned(pool, [f"payee{p}" for p in range(PAYEES)])[payee]
    countries = interned(pool, list(COUNTRIES))
    home = acct % len(COUNTRIES)

    ev = which == 0
    type_ids = interned(pool, list(ACCOUNT_TYPES))
    kind = rng.choice(len(ACCOUNT_TYPES), n, p=list(ACCOUNT_TYPES.values()))
    f["type"][ev] = type_ids[kind[ev]]
    added = ev & (kind == 0)
    f["payee"][added] = payee_ids[added]
    f["flag"][added] = coin[added] < 0.8
    reactivated = ev & (kind == list(ACCOUNT_TYPES).index("reactivated"))
    f["days"][reactivated] = rng.integers(30, 400, int(reactivated.sum()))

    lg = which == 1
    device = interned(pool, [f"device{d}" for d in range(DEVICES)])
    f["device"][lg] = device[(acct[lg] * 31 + rng.integers(0, 3, int(lg.sum()))) % DEVICES]
    f["flag"][lg] = coin[lg] < 0.04
    abroad = rng.random(n) < 0.03
    other = (home + rng.integers(1, len(COUNTRIES), n)) % len(COUNTRIES)
    f["country"][lg] = countries[np.where(abroad, other, home)[lg]]
    f["home"][lg] = countries[home[lg]]

    tr = which == 2
    f["payee"][tr] = payee_ids[tr]
    f["flag"][tr] = coin[tr] < 0.05
    f["kind"][tr] = np.where(coin[tr] < 0.8, pool.intern("transfer"), pool.intern("deposit"))
    f["amount"][tr] = np.round(rng.lognormal(np.log(200), 1.2, int(tr.sum())), 2)
    return f


def planted(
    chains: int, accounts: int, span_ms: int, pool: StringPool, rng: np.random.Generator
) -> Fields:
    """`chains` true chains, each on its own account and fresh payee, within 45 minutes."""
    f = _empty(4 * chains)
    acct = rng.choice(accounts, chains, replace=chains > accounts)
    early = np.arange(chains) < max(1, chains // 20)  # in the prefix: start early, short gaps
    late = rng.integers(0, max(span_ms - 60 * MINUTE_MS, 1), chains)
    start = np.where(early, rng.integers(0, 120_000, chains), late)
    gaps = np.where(
        early[:, None],
        rng.integers(1_000, 20_000, (chains, 3)),
        rng.integers(5_000, 15 * MINUTE_MS, (chains, 3)),
    )
    times = start[:, None] + np.concatenate([np.zeros((chains, 1), np.int64), gaps], 1).cumsum(1)
    f["ts"] = EPOCH_MS + times.reshape(-1)
    f["account_ix"] = np.repeat(acct, 4)
    f["stream_name"][:] = np.tile([0, 1, 0, 2], chains)
    mule = interned(pool, [f"mule{i}" for i in range(chains)])
    home = np.array(interned(pool, list(COUNTRIES)))[acct % len(COUNTRIES)]
    f["type"][0::4] = pool.intern("password_reset")
    f["device"][1::4] = interned(pool, [f"attacker{i}" for i in range(chains)])
    f["flag"][1::4] = 1
    f["country"][1::4] = home
    f["home"][1::4] = home
    f["type"][2::4] = pool.intern("payee_added")
    f["payee"][2::4] = mule
    f["flag"][2::4] = 1
    f["payee"][3::4] = mule
    f["flag"][3::4] = 1
    f["kind"][3::4] = pool.intern("transfer")
    f["amount"][3::4] = np.round(rng.uniform(1000, 9000, chains), 2)
    f["planted"][3::4] = np.arange(chains)
    return f


def make_columns(
    rules: CompiledRules, events: int, accounts: int, chains: int, pool: StringPool, seed: int
) -> tuple[Columns, npt.NDArray[np.int64]]:
    """The events in time order, and the positions (seq) of the planted cashouts."""
    rng = np.random.default_rng(seed)
    span_ms = 120 * MINUTE_MS
    f = time_order(
        [
            background(events - 4 * chains, accounts, span_ms, pool, rng),
            planted(chains, accounts, span_ms, pool, rng),
        ]
    )
    f["account"] = interned(pool, [f"acct{a}" for a in range(accounts)])[f["account_ix"]]
    schema = rules.schema
    stream_ix = np.array([schema.stream_index(s) for s in STREAM_MIX], np.int8)
    cashouts = np.flatnonzero(f["planted"] >= 0)
    columns = Columns(
        rules.programs,
        stream_ix[f.pop("stream_name")],
        f.pop("account_ix") + 1,
        f["ts"],
        {k: v for k, v in f.items() if k != "planted"},
        SOURCES,
    )
    return columns, cashouts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=3_000_000)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--chains", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=100_000)
    parser.add_argument("--prefix", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--all-streams", action="store_true", help="all 7 shipped streams")
    parser.add_argument(
        "--any", action="store_true", help="variant: `followed by any` (skip till any)"
    )
    args = parser.parse_args()
    edits = [("followed by ", "followed by any ")] if args.any else []
    rules = load_rule("account_takeover.yaml", "account_takeover", args.all_streams, edits)
    pool = StringPool()
    started = time.perf_counter()
    columns, cashouts = make_columns(
        rules, args.events, args.accounts, args.chains, pool, args.seed
    )
    generate_s = time.perf_counter() - started
    rss_data, peak_data = rss_mb(), peak_rss_mb()
    engine = Engine(rules.programs, pool)
    run = run_product(engine, columns, args.batch)
    peak_product = peak_rss_mb()
    found = {m.match.events[-1].seq for m in run.emitted}
    figures: dict[str, Any] = {
        "rule": "account_takeover (patterns/account_takeover.yaml)"
        + (", followed by any" if args.any else ""),
        "events": len(columns),
        "accounts": args.accounts,
        "streams_in_schema": len(rules.schema.streams),
        "columns_in_schema": len(rules.schema.columns),
        "batch": args.batch,
        **run.figures(),
        "planted_chains": len(cashouts),
        "planted_chains_found": len(found.intersection(cashouts.tolist())),
    }
    figures.update(
        build_and_memory(engine, generate_s, columns, pool, (rss_data, peak_data, peak_product))
    )
    figures.update(compare_prefix(rules.programs, pool, columns, args.prefix, args.batch))
    figures["peak_rss_mb"] = peak_rss_mb()  # with the reference engine's prefix run
    report("engine_ato", figures)


if __name__ == "__main__":
    main()
