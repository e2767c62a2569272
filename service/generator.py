"""Synthetic, labelled transaction streams with injected fraud, for the demo, tests and benchmarks.

Deterministic for a seed. Normal traffic: card transactions of everyday amounts. Injected
scenarios are written to the label list with the keys and event ids involved.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Label:
    scenario: str
    key: str
    event_ids: tuple[str, ...]
    time: int


@dataclass
class Generator:
    seed: int = 7
    cards: int = 1000
    start_ms: int = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    rate: float = 1000.0  # events per second of event time
    fraud_ratio: float = 0.002  # share of events that start an injected scenario
    labels: list[Label] = field(default_factory=list)

    def events(self, count: int) -> Iterator[tuple[str, dict[str, Any]]]:
        """`count` (stream, event) pairs in event-time order (injected ones may add a few)."""
        rng = random.Random(self.seed)
        step = 1000.0 / self.rate
        now = float(self.start_ms)
        produced = 0
        while produced < count:
            now += rng.expovariate(1.0 / step)
            if rng.random() < self.fraud_ratio:
                for event in self._card_testing(rng, int(now)):
                    produced += 1
                    yield "txns", event
                continue
            produced += 1
            yield (
                "txns",
                self._txn(
                    rng,
                    f"card-{rng.randrange(self.cards)}",
                    int(now),
                    round(rng.lognormvariate(3.5, 1.0), 2),
                ),
            )

    def _txn(self, rng: random.Random, card: str, ts: int, amount: float) -> dict[str, Any]:
        return {
            "txn_id": f"t{rng.getrandbits(48):012x}",
            "card_id": card,
            "account_id": "acct-" + card.split("-", 1)[1],
            "amount": amount,
            "merchant": rng.choice(["grocer", "fuel", "cafe", "books", "electronics", "travel"]),
            "new_merchant": rng.random() < 0.05,
            "country": rng.choice(["FR", "DE", "GB", "US", "ES", "IT"]),
            "lat": round(rng.uniform(35, 60), 4),
            "lon": round(rng.uniform(-10, 20), 4),
            "card_present": rng.random() < 0.6,
            "kind": "purchase",
            "ts": ts,
        }

    def _card_testing(self, rng: random.Random, ts: int) -> Iterator[dict[str, Any]]:
        card = f"card-x{rng.getrandbits(32):08x}"
        events = []
        for i in range(rng.randint(3, 5)):
            events.append(self._txn(rng, card, ts + i * 20_000, round(rng.uniform(0.5, 4.99), 2)))
        events.append(
            self._txn(rng, card, ts + len(events) * 20_000, round(rng.uniform(600, 2000), 2))
        )
        self.labels.append(
            Label("card_testing", card, tuple(e["txn_id"] for e in events), events[-1]["ts"])
        )
        yield from events
