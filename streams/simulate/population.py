"""Simulated customers: their devices, loyalty cards, habits, and what their devices remember."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Customer:
    customer_id: str
    web_devices: list[str]
    app_device: str | None
    has_card: bool
    #: Devices on which the customer is logged in (tracking then carries customer_id).
    logged_in: set[str] = field(default_factory=set)
    #: A household member who shares this customer's tablet, if any.
    shared_tablet: str | None = None
    #: Probability of buying when browsing with intent (some people are buyers).
    buyer: float = 0.5
    #: Device types of the web devices (desktop/mobile/tablet), parallel to web_devices.
    web_types: list[str] = field(default_factory=list)


def build_population(
    n: int, rng: random.Random, app_share: float, card_share: float, shared_share: float
) -> list[Customer]:
    customers: list[Customer] = []
    for i in range(n):
        n_web = 1 if rng.random() < 0.7 else 2
        web = [f"w-{i:06d}-{k}" for k in range(n_web)]
        types = [rng.choice(("desktop", "desktop", "mobile", "mobile", "tablet")) for _ in web]
        app = f"a-{i:06d}" if rng.random() < app_share else None
        customers.append(
            Customer(
                customer_id=f"c-{i:06d}",
                web_devices=web,
                app_device=app,
                has_card=rng.random() < card_share,
                buyer=rng.betavariate(2, 3),
                web_types=types,
            )
        )
    # Households: pairs of customers sharing a family tablet, each logging in on it.
    for i in range(0, n - 1, 2):
        if rng.random() < shared_share:
            tablet = f"t-{i:06d}"
            customers[i].shared_tablet = tablet
            customers[i + 1].shared_tablet = tablet
    return customers
