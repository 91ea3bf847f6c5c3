"""Journeys at shared devices: a POS till and a kiosk serve one member of the public after another.

A till sends its own id as the receipt's `device_id` (with `device_type` pos, which the contract
allows). It must never link to a customer: a loyalty-card receipt belongs to its customer, a
guest's receipt to a guest visit of its own (`anon:<till>:<first event id of the visit>`), and
nothing the till did before or after is ever credited to a loyalty customer (README, "People").
These stories join the catalogue (`stories.STORIES`), so they run through the core and through
the embedded runner into chDB, where `events_resolved` gives every event's person at query time.
"""

from __future__ import annotations

from typing import Any

from tests.journeys.story import Expect, S, Step, Story

M = 60.0


def till(
    at: float, type: str, customer: str | None = None, device: str = "till-1", **props: Any
) -> Step:
    """An event at a POS till (`device_type` pos)."""
    return Step(
        at, "store", type, device, customer, {"store_id": "paris-01", "device_type": "pos", **props}
    )


def receipt(at: float, customer: str | None = None, device: str = "till-1") -> Step:
    props = {"transaction_id": f"r{int(at)}", "value": 30.0, "currency": "EUR"}
    return till(at, "purchase", customer, device, **props)


def kiosk(at: float, type: str, customer: str | None = None, **props: Any) -> Step:
    """An event at the in-store kiosk (a web device with `device_type` kiosk)."""
    return Step(at, "web", type, "kiosk-1", customer, {"device_type": "kiosk", **props})


def guest(story: str, index: int, device: str = "till-1") -> str:
    """The person of a guest visit that starts at event `index` of `story`."""
    return f"anon:{device}:{story}-{index}"


def _store_session(person: str, events: int = 1) -> S:
    return S(person, events, ("store",), converted=True)


SHARED_DEVICE_STORIES: list[Story] = [
    Story(
        "two_loyalty_customers_5_minutes_apart_at_one_till_are_two_people",
        [receipt(0, "c31"), receipt(5 * M, "c32")],
        Expect(
            [_store_session("c31"), _store_session("c32")],
            resolved_persons={
                "two_loyalty_customers_5_minutes_apart_at_one_till_are_two_people-0": "c31",
                "two_loyalty_customers_5_minutes_apart_at_one_till_are_two_people-1": "c32",
            },
        ),
    ),
    Story(
        "guest_receipt_after_a_loyalty_receipt_is_not_the_loyalty_customers",
        [receipt(0, "c33"), receipt(5 * M)],
        Expect(
            [
                _store_session("c33"),
                _store_session(
                    guest("guest_receipt_after_a_loyalty_receipt_is_not_the_loyalty_customers", 1)
                ),
            ],
            resolved_persons={
                "guest_receipt_after_a_loyalty_receipt_is_not_the_loyalty_customers-1": guest(
                    "guest_receipt_after_a_loyalty_receipt_is_not_the_loyalty_customers", 1
                ),
            },
        ),
    ),
    Story(
        # Before shared devices were recognised, the loyalty receipt linked the till and the
        # view re-attributed both earlier guest receipts to c34.
        "earlier_guest_receipts_at_a_till_are_not_re_attributed",
        [receipt(0), receipt(3 * M), receipt(6 * M, "c34")],
        Expect(
            [
                _store_session(guest("earlier_guest_receipts_at_a_till_are_not_re_attributed", 0)),
                _store_session(guest("earlier_guest_receipts_at_a_till_are_not_re_attributed", 1)),
                _store_session("c34"),
            ],
            resolved_persons={
                "earlier_guest_receipts_at_a_till_are_not_re_attributed-0": guest(
                    "earlier_guest_receipts_at_a_till_are_not_re_attributed", 0
                ),
                "earlier_guest_receipts_at_a_till_are_not_re_attributed-1": guest(
                    "earlier_guest_receipts_at_a_till_are_not_re_attributed", 1
                ),
            },
        ),
    ),
    Story(
        # One guest's declined card then their receipt is one visit (no payment_failure: the
        # purchase followed); the receipt closes the visit, so the next guest is someone else.
        "a_guest_visit_at_a_till_ends_at_its_receipt",
        [
            till(0, "payment_error", reason="card_declined"),
            receipt(60),
            receipt(5 * M),
        ],
        Expect(
            [
                _store_session(guest("a_guest_visit_at_a_till_ends_at_its_receipt", 0), 2),
                _store_session(guest("a_guest_visit_at_a_till_ends_at_its_receipt", 2)),
            ],
        ),
    ),
    Story(
        # A guest visit without a receipt ends after the session gap (30 min) of silence.
        "guest_events_at_a_till_more_than_30_minutes_apart_are_two_visits",
        [
            till(0, "store_visit"),
            till(30 * M, "store_visit"),
            till(60 * M + 1, "store_visit"),
        ],
        Expect(
            [
                S(
                    guest("guest_events_at_a_till_more_than_30_minutes_apart_are_two_visits", 0),
                    2,
                    ("store",),
                ),
                S(
                    guest("guest_events_at_a_till_more_than_30_minutes_apart_are_two_visits", 2),
                    1,
                    ("store",),
                    bounced=True,
                ),
            ],
            {"bounce": 1},
        ),
    ),
    Story(
        # A customer logs in at the kiosk and leaves; the next person browses anonymously.
        "a_login_at_the_kiosk_does_not_credit_the_next_visitor",
        [
            kiosk(0, "page_view", page="/home"),
            kiosk(20, "login", "c35", method="password"),
            kiosk(40, "page_view", "c35", page="/account"),
            kiosk(5 * M, "page_view", page="/home"),
            kiosk(5 * M + 20, "page_view", page="/shoes"),
        ],
        Expect(
            [
                S(
                    guest("a_login_at_the_kiosk_does_not_credit_the_next_visitor", 0, "kiosk-1"),
                    1,
                    ("web",),
                    bounced=True,
                ),
                S("c35", 2, ("web",)),
                S(
                    guest("a_login_at_the_kiosk_does_not_credit_the_next_visitor", 3, "kiosk-1"),
                    2,
                    ("web",),
                ),
            ],
            {"bounce": 1},
            resolved_persons={
                "a_login_at_the_kiosk_does_not_credit_the_next_visitor-0": guest(
                    "a_login_at_the_kiosk_does_not_credit_the_next_visitor", 0, "kiosk-1"
                ),
                "a_login_at_the_kiosk_does_not_credit_the_next_visitor-3": guest(
                    "a_login_at_the_kiosk_does_not_credit_the_next_visitor", 3, "kiosk-1"
                ),
            },
        ),
    ),
]
