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
]
