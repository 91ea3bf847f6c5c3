"""Session stories: what one customer does in one visit, as a list of timed events.

Intuition: a visit is a small state machine walked with random choices: land, browse, maybe
search, maybe add to cart, maybe check out, maybe pay. Friction stories (bounces, quick backs,
fruitless searches, rage clicks, payment errors, checkout loops, abandoned carts and checkouts,
finishing in store, repeated support contacts) are branches of that walk with realistic odds,
raised inside incident windows.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from streams.simulate.config import Incident
from streams.simulate.population import Customer

PAGES = ["/", "/women", "/men", "/kids", "/home-deco", "/sale", "/new", "/brands"]
ITEMS = [f"sku-{i:04d}" for i in range(400)]
TERMS = ["red dress", "sneakers", "linen shirt", "lamp", "kids jacket", "gift card", "wool coat"]
NO_RESULT_TERMS = ["xqzt", "blue unicorn lamp", "size 52 boots", "zzz"]
STORES = ["paris-01", "lyon-02", "lille-03", "nantes-04"]
TILLS_PER_STORE = 3
UTM = [None, None, ("newsletter", "email"), ("google", "cpc"), ("instagram", "social")]


@dataclass(slots=True)
class Step:
    ts_ms: int
    channel: str
    event_type: str
    device_id: str | None
    customer_id: str | None
    properties: dict[str, Any]


@dataclass(slots=True)
class Visit:
    """Builds one visit's steps while moving a clock forward."""

    rng: random.Random
    now: int
    channel: str
    device: str | None
    customer: str | None
    device_type: str
    incidents: tuple[Incident, ...]
    steps: list[Step] = field(default_factory=list)

    def wait(self, low_s: float, high_s: float) -> None:
        self.now += int(self.rng.uniform(low_s, high_s) * 1000)

    def emit(self, event_type: str, **props: Any) -> None:
        if self.device_type:
            props.setdefault("device_type", self.device_type)
        self.steps.append(
            Step(self.now, self.channel, event_type, self.device, self.customer, props)
        )

    def incident(self, kind: str) -> bool:
        return any(
            i.kind == kind and i.active(self.now, self.channel, self.device_type)
            for i in self.incidents
        )

    def incident_factor(self, kind: str) -> float | None:
        """None: no such incident now; 0.0: one of the classic size; else its `factor`."""
        for i in self.incidents:
            if i.kind == kind and i.active(self.now, self.channel, self.device_type):
                return i.factor or 0.0
        return None

    def view(self, page: str) -> None:
        if self.channel == "app":
            self.emit("screen_view", screen=page.strip("/") or "home")
        else:
            self.emit("page_view", page=page)


def browse(v: Visit, pages: int) -> None:
    for _ in range(pages):
        v.wait(4, 60)
        roll = v.rng.random()
        if roll < 0.35:
            v.view(v.rng.choice(PAGES))
        elif roll < 0.55:
            v.emit("view_item_list", item_list_id=v.rng.choice(PAGES).strip("/") or "home")
        else:
            v.emit("view_item", item_id=v.rng.choice(ITEMS))


def land(v: Visit) -> None:
    page = v.rng.choice(PAGES)
    if v.channel == "web":
        utm = v.rng.choice(UTM)
        props: dict[str, Any] = {"page": page}
        if utm:
            props.update(utm_source=utm[0], utm_medium=utm[1], utm_campaign="w47")
        v.emit("page_view", **props)
    else:
        v.view(page)


def search(v: Visit, fruitless: bool) -> None:
    for i in range(3 if fruitless else 1):
        v.wait(3, 20)
        if fruitless:
            v.emit("search", search_term=v.rng.choice(NO_RESULT_TERMS), results_count=0)
        else:
            v.emit("search", search_term=v.rng.choice(TERMS), results_count=v.rng.randint(1, 80))
        if fruitless and i == 1 and v.rng.random() < 0.3:
            break


def rage(v: Visit) -> None:
    element = v.rng.choice(["add-to-cart-button", "pay-button", "size-selector", "promo-banner"])
    for _ in range(v.rng.randint(3, 6)):
        v.emit("click", element=element)
        v.now += v.rng.randint(80, 300)


def quick_back(v: Visit) -> None:
    v.wait(3, 10)
    first = v.rng.choice(PAGES)
    v.view(first)
    v.wait(2, 15)
    v.view(v.rng.choice([p for p in PAGES if p != first]))
    v.now += v.rng.randint(800, 4500)
    v.view(first)


def add_to_cart(v: Visit) -> float:
    total = 0.0
    for _ in range(v.rng.randint(1, 3)):
        v.wait(5, 40)
        price = round(v.rng.uniform(9, 180), 2)
        total += price
        v.emit("add_to_cart", item_id=v.rng.choice(ITEMS), quantity=1, price=price)
    return round(total, 2)


def checkout(v: Visit, value: float, customer: Customer) -> str:
    """Walk the checkout; returns how it ended: purchased | abandoned | failed."""
    v.wait(5, 30)
    v.emit("view_cart")
    v.wait(5, 30)
    v.emit("begin_checkout", value=value)
    bug = v.incident_factor("checkout_bug") == 0.0  # a sized bug raises exceptions only
    loops = 2 if bug or v.rng.random() < 0.04 else 0
    for _ in range(loops):
        v.wait(5, 20)
        v.emit("add_shipping_info")
        if bug and v.rng.random() < 0.6:
            v.emit("exception", description="CheckoutView: address form crashed", fatal=False)
        v.wait(3, 10)
        v.emit("view_cart")
        v.wait(3, 10)
        v.emit("begin_checkout", value=value)
    v.wait(10, 60)
    v.emit("add_shipping_info")
    if v.rng.random() < 0.18:
        return "abandoned"
    v.wait(10, 60)
    v.emit("add_payment_info")
    size = v.incident_factor("payment_outage")
    outage = size is not None
    p_error = 0.05 if size is None else 0.85 if size == 0.0 else error_odds(size)
    errors = 0
    while v.rng.random() < p_error:
        v.wait(3, 15)
        v.emit("payment_error", reason="gateway_timeout" if outage else "card_declined")
        errors += 1
        if errors >= v.rng.randint(1, 3):
            return "failed"
    v.wait(5, 20)
    v.emit(
        "purchase",
        transaction_id=f"T-{v.now:x}-{v.rng.randint(0, 9999)}",
        value=value,
        currency="EUR",
    )
    return "purchased"


def error_odds(factor: float) -> float:
    """The odds of a payment error that make payment failures `factor` times as frequent.

    A payment attempt fails (`payment_failure`) after an error that ends the attempt (1 in 3)
    or after two errors: p * (1/3 + 2p/3) of the attempts that reach payment, 0.0183 at the
    normal odds p = 0.05. Solved for p at `factor` times that."""
    target = factor * 0.05 * (1 / 3 + 2 * 0.05 / 3)
    return float((-1 / 3 + math.sqrt(1 / 9 + 8 * target / 3)) / (4 / 3))


def store_receipt(v: Visit, value: float) -> None:
    """A POS receipt. Tills send their own id as `device_id` (`till-<store>-<n>`), as many POS
    systems do: every guest receipt, and half the loyalty-card ones (the others come without a
    device, which the contract allows). One till thus serves loyalty customers and guests one
    after another: the shared device Parcours must never link (README, "People"). The till is
    derived from the time, not drawn, so the random stream (and every seeded output but the
    receipts' device ids) is the same as before tills were simulated."""
    transaction_id = f"R-{v.now:x}-{v.rng.randint(0, 9999)}"
    store = v.rng.choice(STORES)
    device = v.device
    if v.customer is None or v.now // 1000 % 2 == 0:
        v.device = f"till-{store}-{v.now // 1000 % TILLS_PER_STORE + 1}"
    v.emit("purchase", transaction_id=transaction_id, value=value, currency="EUR", store_id=store)
    v.device = device
