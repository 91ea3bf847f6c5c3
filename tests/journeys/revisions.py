"""Stories of late data revising what was concluded (streams/core/revise.py).

Each arrives in an order where the late event comes after its person's journey was decided
(its session closed, the checkout attempt judged abandoned): the expected outcome is what the
same events in time order give, with nothing flagged late.
"""

from __future__ import annotations

from tests.journeys.stories import H, M, buy, pv, web
from tests.journeys.story import Expect, S, Step, Story

REVISION_STORIES: list[Story] = [
    Story(
        # Two visits 45 min apart (two sessions, the second a bounce); a page view between them,
        # arriving an hour later, fills the gap: one session, and the bounce is withdrawn.
        "late_event_bridging_two_sessions_makes_them_one",
        [
            pv(0, "/a", device="w30"),
            pv(5, "/b", device="w30"),
            pv(45 * M, "/c", device="w30"),
            pv(2 * H, "/x", device="w31"),
            pv(22 * M, "/bridge", device="w30"),
        ],
        Expect(
            [S("anon:w30", 4, ("web",)), S("anon:w31", 1, ("web",), bounced=True)],
            {"bounce": 1},
        ),
    ),
    Story(
        # The POS exports its receipts at night: the store purchase 20 min after the web
        # checkout arrives hours after the attempt was judged abandoned. The abandonment is
        # withdrawn; it was a channel switch.
        "store_receipt_from_the_nightly_batch_turns_an_abandonment_into_a_channel_switch",
        [
            web(0, "add_to_cart", "w32", "c32", item_id="sku-1"),
            web(30, "begin_checkout", "w32", "c32"),
            web(60, "add_shipping_info", "w32", "c32"),
            pv(10 * H, "/x", device="w33"),
            buy(20 * M + 60, "store", "c32"),
        ],
        Expect(
            [
                S("c32", 4, ("store", "web"), converted=True),
                S("anon:w33", 1, ("web",), bounced=True),
            ],
            {"channel_switch": 1, "bounce": 1},
            links=[("w32", "c32")],
        ),
    ),
    Story(
        # Two payment errors reach us 59 minutes late, after the session closed: the session
        # now had a payment failure.
        "late_payment_errors_raise_a_payment_failure",
        [
            web(0, "page_view", "w34", "c34", page="/checkout"),
            web(60, "page_view", "w34", "c34", page="/pay"),
            pv(59 * M + 90, "/x", device="w35"),
            web(70, "payment_error", "w34", "c34", reason="declined"),
            web(80, "payment_error", "w34", "c34", reason="declined"),
        ],
        Expect(
            [S("c34", 4, ("web",)), S("anon:w35", 1, ("web",), bounced=True)],
            {"payment_failure": 1, "bounce": 1},
            links=[("w34", "c34")],
        ),
    ),
    Story(
        "late_exception_raises_an_error_hit",
        [
            pv(0, "/a", device="w36"),
            pv(20, "/b", device="w36"),
            pv(3 * H, "/x", device="w37"),
            Step(10, "web", "exception", "w36", None, {"description": "TypeError", "fatal": False}),
        ],
        Expect(
            [S("anon:w36", 3, ("web",)), S("anon:w37", 1, ("web",), bounced=True)],
            {"error_hit": 1, "bounce": 1},
        ),
    ),
    Story(
        # A one-page visit closed as a bounce; its second page view arrives late: not a bounce.
        "late_second_view_withdraws_a_bounce",
        [pv(0, "/a", device="w38"), pv(2 * H, "/x", device="w39"), pv(30, "/b", device="w38")],
        Expect(
            [S("anon:w38", 2, ("web",)), S("anon:w39", 1, ("web",), bounced=True)],
            {"bounce": 1},
        ),
    ),
    # Logins arriving late (tests/core/test_login_order_properties.py found these). The device's
    # anonymous journey is cut at its first login: whatever arrives later, the cut ends where
    # time order puts it, and the visit going on there joins the customer's.
    Story(
        # A view on w60, then c60 on w60 half an hour later (its own visit), then, an hour late,
        # c60's login on w60 from 2 ms before the view: the view joins the login's visit
        # (no longer a one-view visit of its own, and no extra bounce).
        "earlier_login_arriving_late_takes_the_anonymous_view_into_its_visit",
        [
            pv(0.003, "/a", device="w60"),
            web(30 * M + 1, "page_view", "w60", "c60", page="/b"),
            pv(3 * H, "/x", device="w61"),
            web(0.001, "login", "w60", "c60"),
        ],
        Expect(
            [
                S("c60", 2, ("web",), bounced=True),
                S("c60", 1, ("web",), bounced=True),
                S("anon:w61", 1, ("web",), bounced=True),
            ],
            {"bounce": 3},
            links=[("w60", "c60"), ("w60", "c60")],
        ),
    ),
    Story(
        # Two views on w64 and a login 25 min after the second: one visit. The second view
        # arrives after the login: it still bridges the first into the login's visit.
        "anonymous_view_arriving_after_the_login_bridges_into_its_visit",
        [
            pv(0, "/a", device="w64"),
            pv(25 * M, "/b", device="w64"),
            web(50 * M, "login", "w64", "c64"),
            pv(3 * H, "/x", device="w65"),
        ],
        Expect(
            [S("c64", 3, ("web",)), S("anon:w65", 1, ("web",), bounced=True)],
            {"bounce": 1},
            links=[("w64", "c64")],
        ),
        arrival=[0, 2, 3, 1],
    ),
    Story(
        # A checkout begun anonymously 1 ms before the login, delivered a minute late, then the
        # purchase as the customer: one visit, converted, no abandonment and no merge.
        "checkout_begun_just_before_a_login_and_delivered_late_converts",
        [
            web(0, "add_to_cart", "w62", item_id="sku-1"),
            web(30, "begin_checkout", "w62"),
            web(30.001, "login", "w62", "c62"),
            buy(40, "web", "c62", "w62"),
        ],
        Expect([S("c62", 4, ("web",), converted=True)], links=[("w62", "c62")]),
        arrival=[0, 2, 3, 1],
    ),
]
