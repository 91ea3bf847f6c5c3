"""The journey catalogue: every rule at and around its thresholds, stitching, lateness, dedup.

Times are seconds after the story's start. Device ids: `w…` web cookies, `a…` app installs,
`t…` shared tablets; customers `c…`.
"""

from __future__ import annotations

from typing import Any

from tests.journeys.shared_devices import SHARED_DEVICE_STORIES
from tests.journeys.story import Expect, S, Step, Story

M = 60.0
H = 3600.0


def web(at: float, type: str, device: str, customer: str | None = None, **props: Any) -> Step:
    return Step(at, "web", type, device, customer, props)


def app(at: float, type: str, device: str, customer: str | None = None, **props: Any) -> Step:
    return Step(at, "app", type, device, customer, props)


def store(
    at: float, type: str, customer: str | None = None, device: str | None = None, **p: Any
) -> Step:
    return Step(
        at, "store", type, device, customer, {"store_id": "paris-01", "device_type": "pos", **p}
    )


def pv(at: float, page: str, device: str = "w1", customer: str | None = None) -> Step:
    return web(at, "page_view", device, customer, page=page)


def buy(
    at: float, channel: str, customer: str, device: str | None = None, value: float = 50.0
) -> Step:
    props = {"transaction_id": f"t{int(at)}", "value": value, "currency": "EUR"}
    if channel == "store":
        return store(at, "purchase", customer, device, **props)
    return Step(at, channel, "purchase", device, customer, props)


STORIES: list[Story] = [
    # --- bounces and engagement ------------------------------------------------------------
    Story(
        "single_page_bounce",
        [pv(0, "/home")],
        Expect([S("anon:w1", 1, ("web",), bounced=True)], {"bounce": 1}),
    ),
    Story(
        "two_views_are_engaged",
        [pv(0, "/home"), pv(3, "/shoes")],
        Expect([S("anon:w1", 2, ("web",))]),
    ),
    Story(
        "one_view_and_a_click_at_11s_is_engaged",
        [pv(0, "/home"), web(11, "click", "w1", element="menu")],
        Expect([S("anon:w1", 2, ("web",))]),
    ),
    Story(
        "one_view_and_a_click_at_exactly_10s_bounces",
        [pv(0, "/home"), web(10, "click", "w1", element="menu")],
        Expect([S("anon:w1", 2, ("web",), bounced=True)], {"bounce": 1}),
    ),
    # --- sessions ----------------------------------------------------------------------------
    Story(
        "thirty_minutes_of_silence_keeps_the_session",
        [pv(0, "/a"), pv(30 * M, "/b")],
        Expect([S("anon:w1", 2, ("web",))]),
    ),
    Story(
        "thirty_minutes_and_a_millisecond_start_a_new_session",
        [pv(0, "/a"), pv(30 * M + 0.001, "/b")],
        Expect(
            [S("anon:w1", 1, ("web",), bounced=True), S("anon:w1", 1, ("web",), bounced=True)],
            {"bounce": 2},
        ),
    ),
    Story(
        "kiosk_browsing_for_25_hours_is_cut_at_24_hours",
        [pv(i * 10 * M, f"/p{i % 7}", device="k1") for i in range(151)],
        Expect([S("anon:k1", 144, ("web",)), S("anon:k1", 7, ("web",))]),
    ),
    Story(
        "out_of_order_within_grace_lands_in_its_session",
        [pv(0, "/a"), pv(30, "/b"), pv(60, "/c")],
        Expect([S("anon:w1", 3, ("web",))]),
        arrival=[0, 2, 1],
    ),
    # Revision horizon (48 h): an event arriving after its session closed revises it.
    Story(
        "late_event_after_its_session_closed_revises_it",
        [pv(0, "/a"), pv(5, "/b"), pv(40 * M, "/x", device="w2"), pv(10, "/late")],
        Expect([S("anon:w1", 3, ("web",)), S("anon:w2", 1, ("web",), bounced=True)], {"bounce": 1}),
    ),
    # Grace period (2 min): an event exactly that far behind the newest event time is on time.
    Story(
        "event_2_minutes_behind_the_newest_still_joins_its_session",
        [pv(0, "/a"), pv(5, "/b"), pv(30 * M + 5 + 2 * M, "/x", device="w2"), pv(30 * M + 5, "/c")],
        Expect([S("anon:w1", 3, ("web",)), S("anon:w2", 1, ("web",), bounced=True)], {"bounce": 1}),
    ),
    Story(
        # Behind the watermark, after its session was closed: the revision puts it back.
        "event_2_minutes_and_a_millisecond_behind_is_put_back_in_its_session",
        [
            pv(0, "/a"),
            pv(5, "/b"),
            pv(30 * M + 5 + 2 * M + 0.001, "/x", device="w2"),
            pv(30 * M + 5, "/c"),
        ],
        Expect([S("anon:w1", 3, ("web",)), S("anon:w2", 1, ("web",), bounced=True)], {"bounce": 1}),
    ),
    Story(
        "late_event_3_hours_after_its_session_closed_revises_it",
        [pv(0, "/a"), pv(5, "/b"), pv(3 * H, "/x", device="w2"), pv(10, "/late")],
        Expect([S("anon:w1", 3, ("web",)), S("anon:w2", 1, ("web",), bounced=True)], {"bounce": 1}),
    ),
    Story(
        # The watermark (newest event time - 2 min grace) is exactly 48 h after the late event.
        "late_event_at_the_48_hour_revision_horizon_still_revises_its_session",
        [pv(0, "/a"), pv(5, "/b"), pv(48 * H + 10 + 2 * M, "/x", device="w2"), pv(10, "/late")],
        Expect([S("anon:w1", 3, ("web",)), S("anon:w2", 1, ("web",), bounced=True)], {"bounce": 1}),
    ),
    Story(
        # Beyond the revision horizon nothing is revised, and beyond the late horizon (24 h) the
        # session is forgotten too: the event is a visit of its own.
        "late_event_past_the_48_hour_revision_horizon_is_a_visit_of_its_own",
        [
            pv(0, "/a"),
            pv(5, "/b"),
            pv(48 * H + 10 + 2 * M + 0.001, "/x", device="w2"),
            pv(10, "/late"),
        ],
        Expect(
            [
                S("anon:w1", 2, ("web",)),
                S("anon:w2", 1, ("web",), bounced=True),
                S("anon:w1", 1, ("web",), bounced=True),
            ],
            {"bounce": 2},
        ),
    ),
    Story(
        "duplicated_event_is_processed_once",
        [
            pv(0, "/a"),
            Step(0, "web", "page_view", "w1", None, {"page": "/a"}, id="dup"),
            Step(0, "web", "page_view", "w1", None, {"page": "/a"}, id="dup"),
            pv(4, "/b"),
        ],
        Expect([S("anon:w1", 3, ("web",))], duplicates=1),
    ),
    Story(
        # Dedup horizon (24 h): a re-send 23 h later (a consumer re-reading old offsets).
        "event_re_sent_23_hours_later_is_processed_once",
        [
            Step(0, "web", "page_view", "w1", None, {"page": "/a"}, id="dup23"),
            pv(4, "/b"),
            pv(23 * H, "/x", device="w2"),
            Step(0, "web", "page_view", "w1", None, {"page": "/a"}, id="dup23"),
        ],
        Expect(
            [S("anon:w1", 2, ("web",)), S("anon:w2", 1, ("web",), bounced=True)],
            {"bounce": 1},
            duplicates=1,
        ),
    ),
    Story(
        "session_of_24_hours_minus_a_millisecond_is_one_session",
        [pv(i * 20 * M, f"/p{i % 5}", device="k2") for i in range(72)]
        + [pv(24 * H - 0.001, "/last", device="k2")],
        Expect([S("anon:k2", 73, ("web",))]),
    ),
    Story(
        "event_at_exactly_24_hours_starts_a_new_session",
        [pv(i * 20 * M, f"/p{i % 5}", device="k2") for i in range(72)]
        + [pv(24 * H, "/last", device="k2")],
        Expect(
            [S("anon:k2", 72, ("web",)), S("anon:k2", 1, ("web",), bounced=True)], {"bounce": 1}
        ),
    ),
    # --- identity ----------------------------------------------------------------------------
    Story(
        "browsed_app_anonymously_then_bought_on_web_logged_in",
        [
            app(0, "screen_view", "a1", screen="home"),
            app(20, "view_item", "a1", item_id="sku-1"),
            app(60, "login", "a1", "c1"),
            web(5 * M, "page_view", "w1", "c1", page="/cart"),
            web(5 * M + 30, "begin_checkout", "w1", "c1", value=50.0),
            buy(8 * M, "web", "c1", "w1"),
        ],
        Expect(
            [S("c1", 6, ("app", "web"), converted=True)],
            links=[("a1", "c1"), ("w1", "c1")],
        ),
    ),
    Story(
        "anonymous_web_visit_joins_the_customers_open_app_session_on_login",
        [
            app(0, "screen_view", "a2", "c2", screen="home"),
            pv(60, "/shoes", device="w2"),
            pv(90, "/shoes/red", device="w2"),
            web(300, "login", "w2", "c2"),
            app(400, "screen_view", "a2", "c2", screen="cart"),
        ],
        Expect(
            [S("c2", 5, ("app", "web"))],
            links=[("a2", "c2"), ("w2", "c2")],
            merges=1,
        ),
    ),
    Story(
        # Still within the grace period at login: the anonymous events never form a session
        # of their own, they go to the customer with the link and are applied there, in order.
        "login_seconds_after_anonymous_browsing_gives_one_session",
        [
            app(0, "screen_view", "a3", "c3b", screen="home"),
            pv(60, "/shoes", device="w3b"),
            pv(90, "/shoes/red", device="w3b"),
            web(120, "login", "w3b", "c3b"),
        ],
        # The customer's app visit started first: the anonymous web visit joins it (a merge).
        Expect([S("c3b", 4, ("app", "web"))], links=[("a3", "c3b"), ("w3b", "c3b")], merges=1),
    ),
    Story(
        "device_history_before_login_is_attributed_retroactively",
        [
            pv(0, "/a", device="w3"),
            pv(20, "/b", device="w3"),
            web(3 * 24 * H, "login", "w3", "c3"),
            pv(3 * 24 * H + 15, "/c", device="w3"),
        ],
        Expect(
            [S("anon:w3", 2, ("web",)), S("c3", 2, ("web",))],
            links=[("w3", "c3")],
            resolved_persons={"device_history_before_login_is_attributed_retroactively-0": "c3"},
        ),
    ),
    Story(
        "anonymous_history_exactly_30_days_before_login_is_attributed",
        [pv(0, "/a", device="w4b"), web(30 * 24 * H, "login", "w4b", "c4b")],
        Expect(
            [S("anon:w4b", 1, ("web",), bounced=True), S("c4b", 1, ("web",), bounced=True)],
            {"bounce": 2},
            links=[("w4b", "c4b")],
            resolved_persons={
                "anonymous_history_exactly_30_days_before_login_is_attributed-0": "c4b"
            },
        ),
    ),
    Story(
        "anonymous_history_older_than_30_days_stays_anonymous",
        [pv(0, "/a", device="w4"), web(31 * 24 * H, "login", "w4", "c4")],
        Expect(
            [S("anon:w4", 1, ("web",), bounced=True), S("c4", 1, ("web",), bounced=True)],
            {"bounce": 2},
            links=[("w4", "c4")],
            resolved_persons={"anonymous_history_older_than_30_days_stays_anonymous-0": "anon:w4"},
        ),
    ),
    Story(
        "shared_family_tablet",
        [
            app(0, "login", "t1", "c5"),
            app(30, "screen_view", "t1", screen="toys"),
            app(2 * H, "login", "t1", "c6"),
            app(2 * H + 30, "screen_view", "t1", screen="books"),
            app(2 * H + 60, "screen_view", "t1", screen="books/1"),
        ],
        Expect(
            [S("c5", 2, ("app",)), S("c6", 3, ("app",))],
            links=[("t1", "c5"), ("t1", "c6")],
        ),
    ),
    Story(
        "two_customers_are_never_merged",
        [web(0, "login", "w5", "c7"), web(10, "login", "w5", "c8"), pv(25, "/x", device="w5")],
        Expect(
            [S("c7", 1, ("web",), bounced=True), S("c8", 2, ("web",))],
            {"bounce": 1},
            links=[("w5", "c7"), ("w5", "c8")],
        ),
    ),
    Story(
        "store_receipt_without_loyalty_card_is_a_guest",
        [
            Step(
                0,
                "store",
                "purchase",
                None,
                None,
                {"transaction_id": "r1", "value": 12.5, "currency": "EUR"},
                id="receipt-1",
            )
        ],
        Expect([S("guest:r1", 1, ("store",), converted=True)]),
    ),
    # --- checkout ----------------------------------------------------------------------------
    Story(
        "abandoned_web_checkout_bought_in_store_20_min_later",
        [
            web(0, "add_to_cart", "w6", "c9", item_id="sku-9"),
            web(30, "begin_checkout", "w6", "c9"),
            web(60, "add_shipping_info", "w6", "c9"),
            buy(20 * M + 60, "store", "c9"),
        ],
        Expect(
            [S("c9", 4, ("store", "web"), converted=True)],
            {"channel_switch": 1},
            links=[("w6", "c9")],
        ),
    ),
    Story(
        "checkout_abandoned_after_60_minutes_of_silence",
        [web(0, "begin_checkout", "w7", "c10"), web(30, "add_payment_info", "w7", "c10")],
        Expect([S("c10", 2, ("web",))], {"checkout_abandoned": 1}, links=[("w7", "c10")]),
    ),
    Story(
        "purchase_59_minutes_after_checkout_converts_it",
        [
            web(0, "begin_checkout", "w8", "c11"),
            web(11, "view_cart", "w8", "c11"),
            buy(59 * M, "web", "c11", "w8"),
        ],
        Expect(
            [S("c11", 2, ("web",)), S("c11", 1, ("web",), converted=True)], links=[("w8", "c11")]
        ),
    ),
    Story(
        "purchase_exactly_60_minutes_after_checkout_converts_it",
        [
            web(0, "begin_checkout", "w8", "c11b"),
            web(11, "view_cart", "w8", "c11b"),
            buy(60 * M, "web", "c11b", "w8"),
        ],
        Expect(
            [S("c11b", 2, ("web",)), S("c11b", 1, ("web",), converted=True)],
            links=[("w8", "c11b")],
        ),
    ),
    Story(
        "purchase_60_minutes_and_a_millisecond_after_checkout_is_too_late",
        [
            web(0, "begin_checkout", "w8", "c11c"),
            web(11, "view_cart", "w8", "c11c"),
            buy(60 * M + 0.001, "web", "c11c", "w8"),
        ],
        Expect(
            [S("c11c", 2, ("web",)), S("c11c", 1, ("web",), converted=True)],
            {"checkout_abandoned": 1},
            links=[("w8", "c11c")],
        ),
    ),
    Story(
        "purchase_61_minutes_after_checkout_is_too_late",
        [
            web(0, "begin_checkout", "w8", "c12"),
            web(11, "view_cart", "w8", "c12"),
            buy(61 * M, "web", "c12", "w8"),
        ],
        Expect(
            [S("c12", 2, ("web",)), S("c12", 1, ("web",), converted=True)],
            {"checkout_abandoned": 1},
            links=[("w8", "c12")],
        ),
    ),
    Story(
        "cart_abandoned",
        [pv(0, "/p", device="w9"), web(15, "add_to_cart", "w9", item_id="sku-1")],
        Expect([S("anon:w9", 2, ("web",))], {"cart_abandoned": 1}),
    ),
    Story(
        "cart_then_checkout_is_not_a_cart_abandonment",
        [web(0, "add_to_cart", "w9", "c13", item_id="s"), web(5, "begin_checkout", "w9", "c13")],
        Expect(
            [S("c13", 2, ("web",), bounced=True)],
            {"bounce": 1, "checkout_abandoned": 1},
            links=[("w9", "c13")],
        ),
    ),
    Story(
        "checkout_loop_two_backtracks",
        [
            web(i * 10, t, "w10", "c14")
            for i, t in enumerate(
                [
                    "begin_checkout",
                    "add_shipping_info",
                    "view_cart",
                    "begin_checkout",
                    "add_shipping_info",
                    "add_payment_info",
                    "begin_checkout",
                ]
            )
        ],
        Expect(
            [S("c14", 7, ("web",))],
            {"checkout_loop": 1, "checkout_abandoned": 1},
            links=[("w10", "c14")],
        ),
    ),
    Story(
        "checkout_one_backtrack_is_no_loop",
        [
            web(i * 10, t, "w10", "c15")
            for i, t in enumerate(
                ["begin_checkout", "add_shipping_info", "view_cart", "begin_checkout"]
            )
        ]
        + [buy(60, "web", "c15", "w10")],
        Expect([S("c15", 5, ("web",), converted=True)], links=[("w10", "c15")]),
    ),
    # --- payment, search, clicks, errors, support --------------------------------------------
    Story(
        "two_payment_errors",
        [
            web(0, "payment_error", "w11", "c16", reason="declined"),
            web(20, "payment_error", "w11", "c16", reason="declined"),
            buy(40, "web", "c16", "w11"),
        ],
        Expect(
            [S("c16", 3, ("web",), converted=True)], {"payment_failure": 1}, links=[("w11", "c16")]
        ),
    ),
    Story(
        "payment_error_then_purchase_is_fine",
        [web(0, "payment_error", "w11", "c17", reason="timeout"), buy(20, "web", "c17", "w11")],
        Expect([S("c17", 2, ("web",), converted=True)], links=[("w11", "c17")]),
    ),
    Story(
        "payment_error_then_leaving",
        [pv(0, "/pay", "w11", "c18"), web(20, "payment_error", "w11", "c18", reason="declined")],
        Expect([S("c18", 2, ("web",))], {"payment_failure": 1}, links=[("w11", "c18")]),
    ),
    Story(
        "three_fruitless_searches",
        [web(i * 6, "search", "w12", search_term=f"q{i}", results_count=0) for i in range(3)],
        Expect([S("anon:w12", 3, ("web",))], {"search_frustration": 1}),
    ),
    Story(
        "two_fruitless_searches_and_a_good_one",
        [
            web(0, "search", "w12", search_term="a", results_count=0),
            web(5, "search", "w12", search_term="b", results_count=12),
            web(9, "search", "w12", search_term="c", results_count=0),
        ],
        Expect([S("anon:w12", 3, ("web",), bounced=True)], {"bounce": 1}),
    ),
    Story(
        "rage_click_three_within_a_second",
        [
            pv(0, "/p", "w13"),
            web(20, "click", "w13", element="pay"),
            web(20.4, "click", "w13", element="pay"),
            web(21, "click", "w13", element="pay"),
            web(21.2, "click", "w13", element="pay"),
        ],
        Expect([S("anon:w13", 5, ("web",))], {"rage_click": 1}),
    ),
    Story(
        "three_clicks_over_1_2_seconds_are_not_rage",
        [
            pv(0, "/p", "w13"),
            web(20, "click", "w13", element="pay"),
            web(20.6, "click", "w13", element="pay"),
            web(21.2, "click", "w13", element="pay"),
        ],
        Expect([S("anon:w13", 4, ("web",))]),
    ),
    Story(
        "quick_back_within_5_seconds",
        [pv(0, "/list", "w14"), pv(10, "/item", "w14"), pv(14, "/list", "w14")],
        Expect([S("anon:w14", 3, ("web",))], {"quick_back": 1}),
    ),
    Story(
        "back_after_exactly_5_seconds_is_quick",
        [pv(0, "/list", "w14"), pv(10, "/item", "w14"), pv(15, "/list", "w14")],
        Expect([S("anon:w14", 3, ("web",))], {"quick_back": 1}),
    ),
    Story(
        "back_after_5_1_seconds_is_not_quick",
        [pv(0, "/list", "w14"), pv(10, "/item", "w14"), pv(15.1, "/list", "w14")],
        Expect([S("anon:w14", 3, ("web",))]),
    ),
    Story(
        "app_crash_is_an_error_hit",
        [
            app(0, "screen_view", "a15", screen="pay"),
            app(5, "exception", "a15", description="NullPointer in PaymentView", fatal=True),
        ],
        Expect([S("anon:a15", 2, ("app",), bounced=True)], {"error_hit": 1, "bounce": 1}),
    ),
    Story(
        "chat_then_phone_within_a_day_is_a_repeat_contact",
        [
            web(0, "support_contact", "w16", "c19", medium="chat", topic="refund"),
            store(5 * H, "support_contact", "c19", medium="phone", topic="refund"),
        ],
        Expect(
            [S("c19", 1, ("web",), bounced=True), S("c19", 1, ("store",), bounced=True)],
            {"repeat_contact": 1, "bounce": 2},
            links=[("w16", "c19")],
        ),
    ),
    Story(
        "chat_then_email_on_the_same_channel_is_a_repeat_contact",
        [
            web(0, "support_contact", "w17", "c21", medium="chat", topic="delivery"),
            web(2 * H, "support_contact", "w17", "c21", medium="email", topic="delivery"),
        ],
        Expect(
            [S("c21", 1, ("web",), bounced=True), S("c21", 1, ("web",), bounced=True)],
            {"repeat_contact": 1, "bounce": 2},
            links=[("w17", "c21")],
        ),
    ),
    Story(
        "two_chats_on_the_same_channel_are_not_a_repeat_contact",
        [
            web(0, "support_contact", "w17", "c22", medium="chat"),
            web(2 * H, "support_contact", "w17", "c22", medium="chat"),
        ],
        Expect(
            [S("c22", 1, ("web",), bounced=True), S("c22", 1, ("web",), bounced=True)],
            {"bounce": 2},
            links=[("w17", "c22")],
        ),
    ),
    Story(
        "chat_then_phone_exactly_24_hours_later_is_a_repeat_contact",
        [
            web(0, "support_contact", "w16", "c20b", medium="chat"),
            web(24 * H, "support_contact", "w16", "c20b", medium="phone"),
        ],
        Expect(
            [S("c20b", 1, ("web",), bounced=True), S("c20b", 1, ("web",), bounced=True)],
            {"repeat_contact": 1, "bounce": 2},
            links=[("w16", "c20b")],
        ),
    ),
    Story(
        "chat_then_phone_25_hours_later_is_not",
        [
            web(0, "support_contact", "w16", "c20", medium="chat"),
            web(25 * H, "support_contact", "w16", "c20", medium="phone"),
        ],
        Expect(
            [S("c20", 1, ("web",), bounced=True), S("c20", 1, ("web",), bounced=True)],
            {"bounce": 2},
            links=[("w16", "c20")],
        ),
    ),
]

#: Tills and kiosks (tests/journeys/shared_devices.py).
STORIES.extend(SHARED_DEVICE_STORIES)


def _revision_stories() -> list[Story]:
    from tests.journeys.revisions import REVISION_STORIES

    return REVISION_STORIES


STORIES.extend(_revision_stories())


# Purchases deduplicated by transaction: in their own module (it imports `story` only).
from tests.journeys.transaction_stories import TRANSACTION_STORIES  # noqa: E402

STORIES += TRANSACTION_STORIES
