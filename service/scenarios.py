"""Event builders and the injected fraud scenarios of the synthetic generator.

`EventFactory` makes one event of each stream in `patterns/streams.cep` (with a fresh
`event_id`), so background traffic and fraud scenarios share one definition of the event
shapes. Each scenario builder returns the events of one injected fraud case, shaped to
satisfy exactly one rule of the library (`SCENARIOS`, keyed by rule name), on keys of its
own: a scenario never shares a card, account or device with background traffic, so a
background event can never break (or complete) it and the ground truth stays exact.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nfa.interpret import haversine_km

Event = dict[str, Any]
Timed = tuple[str, Event]  # (stream, event); the event's `ts` is epoch milliseconds

MINUTE = 60_000


@dataclass(frozen=True)
class City:
    name: str
    country: str
    lat: float
    lon: float


#: Where background cards and accounts live.
HOME_CITIES = (
    City("Paris", "FR", 48.8566, 2.3522),
    City("Lyon", "FR", 45.7640, 4.8357),
    City("Berlin", "DE", 52.5200, 13.4050),
    City("Munich", "DE", 48.1351, 11.5820),
    City("London", "GB", 51.5074, -0.1278),
    City("Manchester", "GB", 53.4808, -2.2426),
    City("Madrid", "ES", 40.4168, -3.7038),
    City("Barcelona", "ES", 41.3874, 2.1686),
    City("Rome", "IT", 41.9028, 12.4964),
    City("Milan", "IT", 45.4642, 9.1900),
    City("Amsterdam", "NL", 52.3676, 4.9041),
)
#: Where cloned cards turn up.
FAR_CITIES = (
    City("New York", "US", 40.7128, -74.0060),
    City("Lagos", "NG", 6.5244, 3.3792),
    City("Dubai", "AE", 25.2048, 55.2708),
    City("Singapore", "SG", 1.3521, 103.8198),
    City("Sao Paulo", "BR", -23.5505, -46.6333),
    City("Moscow", "RU", 55.7558, 37.6173),
)
# fmt: off
MERCHANTS = (
    "grocer", "fuel", "cafe", "books", "electronics", "travel", "pharmacy", "fashion",
    "restaurant", "cinema", "hardware", "telecom", "streaming", "marketplace",
)
# fmt: on


@dataclass(frozen=True)
class Label:
    """Ground truth of one injected scenario: the rule that must fire, on which key.

    `time` is the event time at which the rule can decide: the last event's time, or for an
    absence the end of its window.
    """

    scenario: str
    key: str
    event_ids: tuple[str, ...]
    time: int

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "rule": self.scenario,
            "key": self.key,
            "event_ids": list(self.event_ids),
            "time": self.time,
        }


@dataclass
class Scenario:
    """The events of one injected case (any order; the generator sorts by time) and its label."""

    name: str
    key: str
    events: list[Timed]
    time: int

    def label(self) -> Label:
        return Label(self.name, self.key, tuple(e["event_id"] for _, e in self.events), self.time)


class EventFactory:
    """Builds events with unique, deterministic ids; holds the per-key state they need."""

    def __init__(self, rng: random.Random, cards: int, accounts: int) -> None:
        self.rng = rng
        self.cards = cards
        self.accounts = accounts
        self._next_id = 0
        self._fresh = 0
        self._device_cards: dict[str, set[str]] = {}

    # ------------------------------------------------------------------ keys
    def event_id(self) -> str:
        self._next_id += 1
        return f"ev-{self._next_id:09d}"

    def fresh(self, kind: str) -> str:
        """A key no background event uses, formatted like background keys."""
        self._fresh += 1
        base = {"card": self.cards, "acct": self.accounts, "dev": self.cards}[kind]
        return f"{kind}-{base + self._fresh:07d}"

    @staticmethod
    def home(index: int) -> City:
        return HOME_CITIES[(index * 7919) % len(HOME_CITIES)]

    def near(self, city: City, spread: float = 0.05) -> tuple[float, float]:
        return (
            round(city.lat + self.rng.uniform(-spread, spread), 4),
            round(city.lon + self.rng.uniform(-spread, spread), 4),
        )

    # ------------------------------------------------------------------ events
    def txn(
        self,
        card: str,
        account: str,
        ts: int,
        amount: float,
        city: City,
        *,
        kind: str = "purchase",
        merchant: str | None = None,
        new_merchant: bool = False,
        card_present: bool = True,
    ) -> Event:
        lat, lon = self.near(city)
        return {
            "event_id": self.event_id(),
            "txn_id": f"t{self._next_id:09d}",
            "card_id": card,
            "account_id": account,
            "amount": round(amount, 2),
            "merchant": merchant or self.rng.choice(MERCHANTS),
            "new_merchant": new_merchant,
            "country": city.country,
            "lat": lat,
            "lon": lon,
            "card_present": card_present,
            "kind": kind,
            "ts": ts,
        }

    def device_txn(self, device: str, txn: Event) -> Event:
        seen = self._device_cards.setdefault(device, set())
        new_card = txn["card_id"] not in seen
        seen.add(txn["card_id"])
        return {
            "event_id": self.event_id(),
            "device_id": device,
            "txn_id": txn["txn_id"],
            "card_id": txn["card_id"],
            "amount": txn["amount"],
            "merchant": txn["merchant"],
            "new_card": new_card,
            "ts": txn["ts"],
        }

    def login(
        self, account: str, ts: int, device: str, new_device: bool, country: str, home: str
    ) -> Event:
        return {
            "event_id": self.event_id(),
            "account_id": account,
            "device_id": device,
            "new_device": new_device,
            "country": country,
            "home_country": home,
            "ts": ts,
        }

    def auth(self, card: str, ts: int, amount: float, country: str) -> Event:
        return {
            "event_id": self.event_id(),
            "card_id": card,
            "auth_id": f"A{self._next_id:09d}",
            "amount": round(amount, 2),
            "merchant": self.rng.choice(MERCHANTS),
            "country": country,
            "ts": ts,
        }

    def confirmation(self, auth: Event, ts: int) -> Event:
        return {
            "event_id": self.event_id(),
            "card_id": auth["card_id"],
            "auth_id": auth["auth_id"],
            "method": self.rng.choice(("3ds", "app", "sms")),
            "ts": ts,
        }

    def account_event(self, account: str, ts: int, type_: str, **extra: Any) -> Event:
        return {
            "event_id": self.event_id(),
            "account_id": account,
            "type": type_,
            **extra,
            "ts": ts,
        }

    def transfer(
        self,
        account: str,
        ts: int,
        amount: float,
        *,
        kind: str = "transfer",
        payee: str | None = None,
        new_payee: bool = False,
    ) -> Event:
        event: Event = {
            "event_id": self.event_id(),
            "account_id": account,
            "transfer_id": f"x{self._next_id:09d}",
            "amount": round(amount, 2),
            "new_payee": new_payee,
            "kind": kind,
            "ts": ts,
        }
        if payee is not None:
            event["payee_id"] = payee
        return event


# ---------------------------------------------------------------------- scenarios
def card_testing(f: EventFactory, t: int) -> Scenario:
    """3-5 tiny purchases, each the card's very next transaction, then a large one."""
    card, acct, city = f.fresh("card"), f.fresh("acct"), f.rng.choice(HOME_CITIES)
    events = []
    for _ in range(f.rng.randint(3, 5)):
        events.append(f.txn(card, acct, t, f.rng.uniform(0.5, 4.99), city, card_present=False))
        t += f.rng.randint(10_000, 40_000)
    events.append(f.txn(card, acct, t, f.rng.uniform(600, 2000), city, card_present=False))
    return Scenario("card_testing", card, [("txns", e) for e in events], t)


def card_velocity(f: EventFactory, t: int) -> Scenario:
    """7-9 everyday purchases at different merchants, under a minute apart."""
    card, acct, city = f.fresh("card"), f.fresh("acct"), f.rng.choice(HOME_CITIES)
    events = []
    for _ in range(f.rng.randint(7, 9)):
        events.append(f.txn(card, acct, t, f.rng.uniform(20, 400), city))
        t += f.rng.randint(15_000, 60_000)
    return Scenario("card_velocity", card, [("txns", e) for e in events], events[5]["ts"])


def impossible_travel(f: EventFactory, t: int) -> Scenario:
    """A chip purchase at home, then one 15-60 minutes later on another continent."""
    card, acct = f.fresh("card"), f.fresh("acct")
    home, far = f.rng.choice(HOME_CITIES), f.rng.choice(FAR_CITIES)
    flight_ms = haversine_km(home.lat, home.lon, far.lat, far.lon) / 800.0 * 3_600_000
    gap = min(f.rng.randint(15, 60) * MINUTE, int(flight_ms * 0.7))
    first = f.txn(card, acct, t, f.rng.uniform(10, 120), home)
    second = f.txn(card, acct, t + gap, f.rng.uniform(300, 2500), far)
    return Scenario("impossible_travel", card, [("txns", first), ("txns", second)], t + gap)


def refund_new_merchant(f: EventFactory, t: int) -> Scenario:
    """A purchase at a merchant new to the card, refunded in full 10-50 minutes later."""
    card, acct, city = f.fresh("card"), f.fresh("acct"), f.rng.choice(HOME_CITIES)
    merchant = f"m-{f.rng.getrandbits(24):06x}"
    amount = f.rng.uniform(150, 1500)
    buy = f.txn(card, acct, t, amount, city, merchant=merchant, new_merchant=True)
    back = t + f.rng.randint(10, 50) * MINUTE
    refund = f.txn(card, acct, back, amount, city, kind="refund", merchant=merchant)
    return Scenario("refund_new_merchant", card, [("txns", buy), ("txns", refund)], back)


def device_many_cards(f: EventFactory, t: int) -> Scenario:
    """One device pays with 5-7 different cards, 1-4 minutes apart."""
    device, city = f.fresh("dev"), f.rng.choice(HOME_CITIES)
    events: list[Timed] = []
    for _ in range(f.rng.randint(5, 7)):
        txn = f.txn(
            f.fresh("card"), f.fresh("acct"), t, f.rng.uniform(20, 300), city, card_present=False
        )
        events += [("txns", txn), ("device_txns", f.device_txn(device, txn))]
        t += f.rng.randint(1, 4) * MINUTE
    fifth = [e for s, e in events if s == "device_txns"][4]
    return Scenario("device_many_cards", device, events, fifth["ts"])


def auth_unconfirmed(f: EventFactory, t: int) -> Scenario:
    """Small confirmed authorisations, then a large one that is never confirmed."""
    card, city = f.fresh("card"), f.rng.choice(HOME_CITIES)
    events: list[Timed] = []
    for _ in range(f.rng.randint(0, 2)):
        auth = f.auth(card, t, f.rng.uniform(5, 150), city.country)
        events += [("auths", auth), ("confirmations", f.confirmation(auth, t + 15_000))]
        t += f.rng.randint(1, 5) * MINUTE
    events.append(("auths", f.auth(card, t, f.rng.uniform(300, 3000), city.country)))
    return Scenario("auth_unconfirmed", card, events, t + 5 * MINUTE)


def account_takeover(f: EventFactory, t: int) -> Scenario:
    """Password reset, risky login, new payee, transfer to it: 1-10 minutes between steps."""
    acct, home = f.fresh("acct"), f.rng.choice(HOME_CITIES)
    attacker = f.rng.choice((*FAR_CITIES, home))
    payee = f"p-{f.rng.getrandbits(32):08x}"
    steps = [f.rng.randint(1, 10) * MINUTE for _ in range(3)]
    t1, t2, t3 = t + steps[0], t + sum(steps[:2]), t + sum(steps)
    added = f.account_event(acct, t2, "payee_added", payee_id=payee, new_payee=True)
    cashout = f.transfer(acct, t3, f.rng.uniform(1500, 9000), payee=payee, new_payee=True)
    events: list[Timed] = [
        ("account_events", f.account_event(acct, t, "password_reset")),
        ("logins", f.login(acct, t1, f.fresh("dev"), True, attacker.country, home.country)),
        ("account_events", added),
        ("transfers", cashout),
    ]
    return Scenario("account_takeover", acct, events, t3)


def dormant_reactivation(f: EventFactory, t: int) -> Scenario:
    """A long-dormant account reactivated, then 3-5 transfers 2-15 minutes apart."""
    acct = f.fresh("acct")
    days = f.rng.randint(200, 1500)
    events: list[Timed] = [
        ("account_events", f.account_event(acct, t, "reactivated", dormant_days=days))
    ]
    for _ in range(f.rng.randint(3, 5)):
        t += f.rng.randint(2, 15) * MINUTE
        payee = f"p-{f.rng.getrandbits(32):08x}"
        out = f.transfer(acct, t, f.rng.uniform(300, 2500), payee=payee, new_payee=True)
        events.append(("transfers", out))
    return Scenario("dormant_reactivation", acct, events, events[3][1]["ts"])


def structuring(f: EventFactory, t: int) -> Scenario:
    """3-4 cash deposits of 9,000.00-9,999.99, 5-20 minutes apart (different branches)."""
    acct = f.fresh("acct")
    events: list[Timed] = []
    for _ in range(f.rng.randint(3, 4)):
        deposit = f.transfer(acct, t, f.rng.uniform(9000, 9999.99), kind="deposit")
        events.append(("transfers", deposit))
        t += f.rng.randint(5, 20) * MINUTE
    return Scenario("structuring", acct, events, events[2][1]["ts"])


def sim_swap_transfer(f: EventFactory, t: int) -> Scenario:
    """A SIM swap and, 5-60 minutes later, a transfer out with no re-verification."""
    acct = f.fresh("acct")
    out = t + f.rng.randint(5, 60) * MINUTE
    payee, new_payee = f"p-{f.rng.getrandbits(32):08x}", f.rng.random() < 0.5
    cashout = f.transfer(acct, out, f.rng.uniform(800, 5000), payee=payee, new_payee=new_payee)
    events: list[Timed] = [
        ("account_events", f.account_event(acct, t, "sim_swap")),
        ("transfers", cashout),
    ]
    return Scenario("sim_swap_transfer", acct, events, out)


def new_device_login_unverified(f: EventFactory, t: int) -> Scenario:
    """A login from a new device whose MFA challenge is never passed."""
    acct, home = f.fresh("acct"), f.rng.choice(HOME_CITIES)
    country = f.rng.choice((home, *FAR_CITIES)).country
    login = f.login(acct, t, f.fresh("dev"), True, country, home.country)
    return Scenario("new_device_login_unverified", acct, [("logins", login)], t + 10 * MINUTE)


ScenarioBuilder = Callable[[EventFactory, int], Scenario]
#: One builder per rule of the library, keyed by rule name (= the label's scenario).
# fmt: off
SCENARIOS: dict[str, ScenarioBuilder] = {
    b.__name__: b
    for b in (card_testing, card_velocity, impossible_travel, refund_new_merchant,
              device_many_cards, auth_unconfirmed, account_takeover, dormant_reactivation,
              structuring, sim_swap_transfer, new_device_login_unverified)
}
# fmt: on
