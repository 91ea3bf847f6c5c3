"""Privacy stories as data: a customer whose id is her email, a phone number in properties, an
erasure request. What must hold is said in tests/privacy/ (nothing of her is left anywhere)."""

from __future__ import annotations

from tests.journeys.stories import H, M, app, buy, pv, web
from tests.journeys.story import Expect, S, Story

ANNA = "anna.martin@example.fr"
ANNA_PHONE = "+33 6 12 34 56 78"
BEN = "c-ben"

#: Anna browses anonymously on her laptop, logs in with her email, adds to cart with a gift
#: note holding her phone number, searches for her own email (people do), continues on the app
#: and pays. Ben shops the same afternoon: his rows must survive her erasure.
ANNA_AND_BEN = Story(
    "anna_email_as_customer_id",
    [
        pv(0, "/home", "w-anna"),
        web(30, "login", "w-anna", ANNA),
        web(
            60,
            "add_to_cart",
            "w-anna",
            ANNA,
            item_id="sku-1",
            quantity=1,
            price=30.0,
            gift_note=f"call me on {ANNA_PHONE}",
        ),
        web(90, "search", "w-anna", ANNA, search_term=ANNA, results_count=0),
        app(5 * M, "view_item", "a-anna", ANNA, item_id="sku-1"),
        buy(6 * M, "app", ANNA, "a-anna", value=30.0),
        pv(2 * H, "/home", "w-ben"),
        web(2 * H + 30, "login", "w-ben", BEN),
        pv(2 * H + 60, "/shoes", "w-ben", BEN),
    ],
    Expect(
        [
            S(ANNA, 6, ("app", "web"), converted=True),
            S(BEN, 3, ("web",)),
        ],
        links=[("w-anna", ANNA), ("a-anna", ANNA), ("w-ben", BEN)],
    ),
)

#: Lines the contract rejects that name her: the bytes are stored (scrubbed) as rejections.
ANNA_REJECTED_LINES = [
    b'{"topic": "clickstream", "value": {"event_id": "r1", "occurred_at": "2026-11-02T10:01:00Z",'
    b' "device_id": "w-anna", "customer_id": "' + ANNA.encode() + b'"}}',
    b'{"topic": "clickstream", "value": "' + ANNA.encode() + b" " + ANNA_PHONE.encode() + b'"}',
]
