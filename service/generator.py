"""Synthetic, labelled multi-stream traffic with injected fraud, for the demo, tests and benchmarks.

Deterministic for a seed. Background traffic covers every stream of `patterns/streams.cep`:
card transactions (home-city merchants, 60% card-present, card-not-present ones repeated
on `device_txns` under the paying device), logins (mostly known devices; a new device is
normally followed by a passed MFA challenge), card authorisations (almost all confirmed
within a minute), account events (payees, password resets, SIM swaps followed by identity
verification, reactivations) and transfers/deposits. Amounts are log-normal and keys are
many, so background rarely matches a rule, though now and then it does, as real traffic
would (an unverified SIM swap, an unconfirmed large authorisation...).

Injected fraud scenarios (`service.scenarios`, one per library rule) run on keys of their
own and are recorded as `Label`s (scenario = rule name, key, event ids, decision time),
which `write_labels` writes as JSON lines: the ground truth for recall tests and demos.

Arrival order: by default events come in event-time order. `disorder_ms` delays each event
by up to that much (a bounded shuffle; keep it below the streams' 30 s out-of-orderness),
and `late_ratio` delays that share of background events by `late_delay_ms` or more, so an
engine sees them behind its watermark and must route them to its late output.

    python -m service.generator --events 100000 --seed 7 --out events.jsonl --labels labels.jsonl
"""

from __future__ import annotations

import argparse
import heapq
import random
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from service.scenarios import (
    HOME_CITIES,
    SCENARIOS,
    Event,
    EventFactory,
    Label,
    Scenario,
    Timed,
)

__all__ = ["Generator", "Label"]

SECOND = 1000
MINUTE = 60 * SECOND
#: Background mix: share of ticks per kind of activity (cumulative thresholds below).
MIX = (("txn", 0.42), ("auth", 0.15), ("login", 0.14), ("account", 0.05), ("transfer", 0.24))
ACCOUNT_EVENT_TYPES = (
    ("payee_added", 0.40),
    ("password_reset", 0.22),
    ("address_change", 0.20),
    ("identity_verified", 0.06),
    ("sim_swap", 0.06),
    ("reactivated", 0.06),
)


@dataclass(order=True)
class _Pending:
    """An event waiting in the time line or the arrival queue, ordered by `at`, then `order`."""

    at: int
    order: int
    stream: str = field(compare=False)
    event: Event = field(compare=False)
    scenario: int = field(compare=False, default=-1)  # index into the open scenarios, or -1


@dataclass
class Generator:
    """Produces (stream, event) pairs; `labels` fills as injected scenarios complete."""

    seed: int = 7
    cards: int = 100_000  # background cards (card-0000000 ...); devices follow cards
    start_ms: int = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    rate: float = 1000.0  # background activities per second of event time
    fraud_ratio: float = 0.002  # chance per background activity to also start a scenario
    accounts: int | None = None  # background accounts; default: as many as cards
    duration_s: float | None = None  # stop starting activity after this much event time
    disorder_ms: int = 0  # bounded shuffle of arrival order
    late_ratio: float = 0.0  # share of background events that arrive late
    late_delay_ms: int = 2 * MINUTE  # how far behind a late event arrives (at least)
    scenarios: tuple[str, ...] = tuple(SCENARIOS)  # which scenarios to inject
    labels: list[Label] = field(default_factory=list)
    late_event_ids: list[str] = field(default_factory=list)

    def events(self, count: int | None = None) -> Iterator[Timed]:
        """Up to `count` events (all of `duration_s` when None) in arrival order.

        Arrival order is event-time order unless `disorder_ms` or `late_ratio` is set. A
        scenario's label is recorded once all its events have been produced, so a run cut
        short by `count` has labels for complete scenarios only. With `duration_s`, only
        scenarios that fit in the duration are started.
        """
        if count is None and self.duration_s is None:
            raise ValueError("give a count or set duration_s")
        unknown = sorted(set(self.scenarios) - set(SCENARIOS))
        if unknown:
            raise ValueError(f"unknown scenario(s): {', '.join(unknown)}")
        rng = random.Random(self.seed)
        factory = EventFactory(rng, self.cards, self.accounts or self.cards)
        self.labels.clear()
        self.late_event_ids.clear()
        end = None if self.duration_s is None else self.start_ms + int(self.duration_s * 1000)
        timeline: list[_Pending] = []  # by event time
        arrivals: list[_Pending] = []  # by arrival time
        open_scenarios: dict[int, tuple[Scenario, int]] = {}  # index -> (scenario, left)
        rotation: list[str] = []
        order = 0
        produced = 0
        now = float(self.start_ms)
        mean_gap = 1000.0 / self.rate

        def schedule(stream: str, event: Event, scenario: int = -1) -> None:
            nonlocal order
            order += 1
            heapq.heappush(timeline, _Pending(event["ts"], order, stream, event, scenario))

        def arrive(item: _Pending) -> None:
            delay = rng.randint(0, self.disorder_ms) if self.disorder_ms > 0 else 0
            if item.scenario < 0 and self.late_ratio > 0 and rng.random() < self.late_ratio:
                delay = self.late_delay_ms + rng.randint(0, self.late_delay_ms)
                self.late_event_ids.append(item.event["event_id"])
            heapq.heappush(
                arrivals,
                _Pending(item.at + delay, item.order, item.stream, item.event, item.scenario),
            )

        def deliver(item: _Pending) -> Timed:
            if item.scenario >= 0:
                scenario, left = open_scenarios[item.scenario]
                if left == 1:
                    del open_scenarios[item.scenario]
                    self.labels.append(scenario.label())
                else:
                    open_scenarios[item.scenario] = (scenario, left - 1)
            return item.stream, item.event

        while end is None or now < end:
            now += rng.expovariate(1.0 / mean_gap)
            tick = int(now)
            if end is not None and tick >= end:
                break
            for stream, event in self._background(factory, rng, tick):
                schedule(stream, event)
            if self.scenarios and rng.random() < self.fraud_ratio:
                if not rotation:
                    rotation = list(self.scenarios)
                    rng.shuffle(rotation)
                scenario = SCENARIOS[rotation.pop()](factory, tick)
                last = max(event["ts"] for _, event in scenario.events)
                if end is None or last < end:  # with a duration, only scenarios that fit
                    open_scenarios[order] = (scenario, len(scenario.events))
                    index = order
                    for stream, event in scenario.events:
                        schedule(stream, event, index)
            while timeline and timeline[0].at <= tick:
                arrive(heapq.heappop(timeline))
            while arrivals and arrivals[0].at <= tick:
                yield deliver(heapq.heappop(arrivals))
                produced += 1
                if count is not None and produced >= count:
                    return
        while timeline:
            arrive(heapq.heappop(timeline))
        while arrivals:
            yield deliver(heapq.heappop(arrivals))
            produced += 1
            if count is not None and produced >= count:
                return

    # ------------------------------------------------------------------ background
    def _background(self, f: EventFactory, rng: random.Random, ts: int) -> list[Timed]:
        """One background activity at `ts`: its event and any follow-up events it causes."""
        accounts = self.accounts or self.cards
        roll, kind = rng.random(), MIX[-1][0]
        for name, share in MIX:
            if roll < share:
                kind = name
                break
            roll -= share
        if kind in ("txn", "auth"):
            i = rng.randrange(self.cards)
            card, city = f"card-{i:07d}", f.home(i)
            if kind == "auth":
                auth = f.auth(card, ts, rng.lognormvariate(4.0, 1.0), city.country)
                out: list[Timed] = [("auths", auth)]
                if rng.random() < 0.997:
                    out.append(
                        ("confirmations", f.confirmation(auth, ts + rng.randint(2, 60) * SECOND))
                    )
                return out
            present = rng.random() < 0.6
            txn = f.txn(
                card,
                f"acct-{i % accounts:07d}",
                ts,
                rng.lognormvariate(3.3, 1.0),
                city,
                kind="refund" if rng.random() < 0.01 else "purchase",
                new_merchant=rng.random() < 0.05,
                card_present=present,
            )
            if present:
                return [("txns", txn)]
            device = f"dev-{i:07d}" if rng.random() < 0.9 else f"dev-{i // 3 * 3:07d}"
            return [("txns", txn), ("device_txns", f.device_txn(device, txn))]
        j = rng.randrange(accounts)
        acct, home = f"acct-{j:07d}", f.home(j)
        if kind == "login":
            new_device = rng.random() < 0.02
            travelling = rng.random() < 0.01
            country = rng.choice(HOME_CITIES).country if travelling else home.country
            device = f.fresh("dev") if new_device else f"dev-{j:07d}"
            login = f.login(acct, ts, device, new_device, country, home.country)
            out = [("logins", login)]
            if new_device and rng.random() < 0.98:
                mfa = f.account_event(acct, ts + rng.randint(5, 120) * SECOND, "mfa_passed")
                out.append(("account_events", mfa))
            return out
        if kind == "account":
            return self._account_event(f, rng, acct, ts)
        if rng.random() < 0.8:
            payee_index = rng.randrange(5)
            new_payee = rng.random() < 0.03
            payee = f"p-{j:07d}-{payee_index if not new_payee else rng.getrandbits(16)}"
            amount = rng.lognormvariate(5.0, 1.0)
            return [("transfers", f.transfer(acct, ts, amount, payee=payee, new_payee=new_payee))]
        return [("transfers", f.transfer(acct, ts, rng.lognormvariate(6.5, 1.0), kind="deposit"))]

    @staticmethod
    def _account_event(f: EventFactory, rng: random.Random, acct: str, ts: int) -> list[Timed]:
        roll, type_ = rng.random(), ACCOUNT_EVENT_TYPES[0][0]
        for name, share in ACCOUNT_EVENT_TYPES:
            if roll < share:
                type_ = name
                break
            roll -= share
        if type_ == "payee_added":
            new_payee = rng.random() < 0.6
            payee = f"p-{acct[5:]}-{rng.getrandbits(16) if new_payee else rng.randrange(5)}"
            event = f.account_event(acct, ts, type_, payee_id=payee, new_payee=new_payee)
            return [("account_events", event)]
        if type_ == "reactivated":
            days = rng.randint(30, 400)
            return [("account_events", f.account_event(acct, ts, type_, dormant_days=days))]
        out: list[Timed] = [("account_events", f.account_event(acct, ts, type_))]
        if type_ == "sim_swap" and rng.random() < 0.97:
            later = ts + rng.randint(2, 30) * MINUTE
            out.append(("account_events", f.account_event(acct, later, "identity_verified")))
        return out

    # ------------------------------------------------------------------ output
    def write_labels(self, path: str | Path) -> int:
        """Write the labels recorded so far as JSON lines; return how many."""
        with open(path, "wb") as out:
            for label in self.labels:
                out.write(orjson.dumps(label.to_json()) + b"\n")
        return len(self.labels)


def write_events(events: Iterator[Timed], path: str | Path) -> int:
    """Write (stream, event) pairs as JSON lines `{"stream": ..., **event}`; return the count."""
    written = 0
    with open(path, "wb") as out:
        for stream, event in events:
            out.write(orjson.dumps({"stream": stream, **event}) + b"\n")
            written += 1
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m service.generator`: write synthetic events and their ground-truth labels."""
    parser = argparse.ArgumentParser(
        prog="python -m service.generator", description="Synthetic labelled fraud traffic."
    )
    parser.add_argument("--events", type=int, default=None, help="how many events (or --duration)")
    parser.add_argument("--duration", type=float, default=None, help="seconds of event time")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rate", type=float, default=50.0, help="activities per event-time second")
    parser.add_argument("--cards", type=int, default=100_000, help="background cards")
    parser.add_argument("--accounts", type=int, default=None, help="background accounts")
    parser.add_argument("--fraud-ratio", type=float, default=0.002)
    parser.add_argument("--start-ms", type=int, default=Generator.start_ms)
    parser.add_argument("--disorder-ms", type=int, default=0, help="bounded arrival shuffle")
    parser.add_argument("--late-ratio", type=float, default=0.0, help="share of late events")
    parser.add_argument("--out", required=True, help="events JSON-lines file")
    parser.add_argument("--labels", default=None, help="ground-truth labels JSON-lines file")
    args = parser.parse_args(argv)
    if args.events is None and args.duration is None:
        parser.error("give --events N or --duration SECONDS")
    generator = Generator(
        seed=args.seed,
        cards=args.cards,
        accounts=args.accounts,
        start_ms=args.start_ms,
        rate=args.rate,
        fraud_ratio=args.fraud_ratio,
        duration_s=args.duration,
        disorder_ms=args.disorder_ms,
        late_ratio=args.late_ratio,
    )
    written = write_events(generator.events(args.events), args.out)
    labels = generator.write_labels(args.labels) if args.labels else len(generator.labels)
    print(
        f"{written} events, {labels} labels, {len(generator.late_event_ids)} late", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
