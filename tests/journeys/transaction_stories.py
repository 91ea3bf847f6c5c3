"""Stories of purchases deduplicated by transaction (a receipt re-sent under a new event id).

Part of the catalogue (`stories.STORIES`): each runs through the core and the embedded runner.
Every story checks revenue three ways: the per-minute aggregates, the per-minute conversions and
the sessions' revenue. The same receipt re-sent counts once within the dedup horizon (24 h of
event time after the purchase that counted), and twice beyond it.
"""

from __future__ import annotations

from typing import Any

from tests.journeys.story import Expect, S, Step, Story

M = 60.0
H = 3600.0
#: The dedup horizon (JourneyConfig.dedup_horizon_ms) and the grace period, in seconds.
HORIZON, REVISION_HORIZON, GRACE = 24 * H, 48 * H, 2 * M


def receipt(
    at: float,
    event_id: str,
    tx: str,
    customer: str | None,
    device: str | None = None,
    channel: str = "store",
    value: float = 50.0,
) -> Step:
    props: dict[str, Any] = {"transaction_id": tx, "value": value, "currency": "EUR"}
    if channel == "store":
        props = {"store_id": "paris-01", "device_type": "pos", **props}
    return Step(at, channel, "purchase", device, customer, props, id=event_id)


def web(at: float, type: str, device: str, customer: str | None = None, **props: Any) -> Step:
    return Step(at, "web", type, device, customer, props)


def beyond_the_horizon(seconds: float) -> Story:
    """A receipt, another shop's traffic moving the watermark to `seconds` after it, and the
    receipt re-exported under a new id (so late)."""
    return Story(
        f"receipt_re_exported_when_the_watermark_is_{seconds}s_after_it",
        [
            receipt(60, "pos-5", "R-5", "c55"),
            web(60 + seconds + GRACE, "page_view", "w55", page="/"),
            receipt(60, "pos-5-again", "R-5", "c55"),
        ],
        Expect([]),
    )


def _with(story: Story, name: str, expect: Expect) -> Story:
    return Story(name, story.steps, expect, story.arrival)


TRANSACTION_STORIES: list[Story] = [
    Story(
        "receipt_re_exported_under_a_new_id_counts_once",
        [
            Step(0, "store", "store_visit", None, "c50", {"store_id": "paris-01"}),
            receipt(60, "pos-1", "R-1", "c50"),
            receipt(60, "pos-1-reexport", "R-1", "c50"),
        ],
        Expect(
            [S("c50", 3, ("store",), converted=True)],
            duplicate_transactions=1,
            revenue=50.0,
            conversions=1,
            session_revenue=50.0,
        ),
    ),
    Story(
        # The nightly POS batch re-sends a receipt the till already sent: late, and a copy.
        "receipt_re_exported_the_next_night_counts_once",
        [
            receipt(60, "pos-2", "R-2", "c51"),
            web(10 * H, "page_view", "w51", page="/"),
            receipt(60, "pos-2-nightly", "R-2", "c51"),
        ],
        Expect(
            # the late copy is put back in its session (a revision), and still counts once
            [S("c51", 2, ("store",), converted=True), S("anon:w51", 1, ("web",), bounced=True)],
            {"bounce": 1},
            duplicate_transactions=1,
            revenue=50.0,
            conversions=1,
            session_revenue=50.0,
        ),
    ),
    Story(
        # The copy is an event of the session, not a purchase: the checkout attempt begun
        # after the order is still abandoned (a purchase would have closed it).
        "web_order_re_sent_minutes_later_counts_once_and_closes_no_checkout",
        [
            receipt(60, "o3", "O-3", "c52", "w52", channel="web"),
            web(120, "begin_checkout", "w52", "c52"),
            receipt(300, "o3-retry", "O-3", "c52", "w52", channel="web"),
        ],
        Expect(
            [S("c52", 3, ("web",), converted=True)],
            {"checkout_abandoned": 1},
            links=[("w52", "c52")],
            duplicate_transactions=1,
            revenue=50.0,
            conversions=1,
            session_revenue=50.0,
        ),
    ),
    Story(
        # Re-sent two hours later with the time of sending: the session is over, and the copy
        # opens none of its own (a one-event visit that never happened, a false bounce).
        "order_re_sent_after_its_session_ended_opens_no_session",
        [
            receipt(60, "o9", "O-9", "c57", "w57", channel="web"),
            receipt(2 * H, "o9-resent", "O-9", "c57", "w57", channel="web"),
        ],
        Expect(
            [S("c57", 1, ("web",), converted=True)],
            links=[("w57", "c57")],
            duplicate_transactions=1,
            revenue=50.0,
            conversions=1,
            session_revenue=50.0,
        ),
    ),
    Story(
        # Receipt numbers are unique per shop or till, not per chain: two customers, two sales.
        "same_transaction_id_for_two_customers_counts_for_each",
        [receipt(60, "pos-4a", "R-4", "c53"), receipt(90, "pos-4b", "R-4", "c54")],
        Expect(
            [S("c53", 1, ("store",), converted=True), S("c54", 1, ("store",), converted=True)],
            revenue=100.0,
            conversions=2,
            session_revenue=100.0,
        ),
    ),
    Story(
        # A guest receipt (no loyalty card, no device) is a person named after the receipt.
        "guest_receipt_re_exported_counts_once",
        [
            receipt(60, "pos-7", "R-7", None),
            receipt(60, "pos-7-reexport", "R-7", None),
            receipt(90, "pos-8", "R-8", None),
        ],
        Expect(
            [
                S("guest:paris-01/R-7", 2, ("store",), converted=True),
                S("guest:paris-01/R-8", 1, ("store",), converted=True),
            ],
            duplicate_transactions=1,
            revenue=100.0,
            conversions=2,
            session_revenue=100.0,
        ),
    ),
    _with(
        # Past the dedup horizon, the copy arrives after its session closed but within the
        # revision horizon (48 h): put back in its session, where the original still is.
        beyond_the_horizon(HORIZON),
        "receipt_re_exported_a_day_later_is_put_back_in_its_session_and_counts_once",
        Expect(
            [S("c55", 2, ("store",), converted=True), S("anon:w55", 1, ("web",), bounced=True)],
            {"bounce": 1},
            duplicate_transactions=1,
            revenue=50.0,
            conversions=1,
            session_revenue=50.0,
        ),
    ),
    _with(
        # Past the revision horizon the copy is no longer put in its session (whose memory is
        # gone), but its transaction is still remembered: judged by its own time, a copy, kept
        # outside any session (a copy opens none).
        beyond_the_horizon(REVISION_HORIZON + 0.001),
        "receipt_re_exported_past_the_revision_horizon_still_counts_once",
        Expect(
            [S("c55", 1, ("store",), converted=True), S("anon:w55", 1, ("web",), bounced=True)],
            {"bounce": 1},
            duplicate_transactions=1,
            revenue=50.0,
            conversions=1,
            session_revenue=50.0,
        ),
    ),
    _with(
        # Documented (README, JourneyConfig): beyond the dedup and revision horizons together
        # the transaction is forgotten, the copy is a purchase again and opens a (converted)
        # session of its own.
        beyond_the_horizon(HORIZON + REVISION_HORIZON + 0.001),
        "receipt_re_exported_past_the_revision_horizon_counts_twice",
        Expect(
            [
                S("c55", 1, ("store",), converted=True),
                S("c55", 1, ("store",), converted=True),
                S("anon:w55", 1, ("web",), bounced=True),
            ],
            {"bounce": 1},
            # the per-minute totals no longer take a contribution that old (their retention,
            # 26 h, is past): only the sessions count it twice
            revenue=50.0,
            conversions=1,
            session_revenue=100.0,
        ),
    ),
    Story(
        # A guest checkout on the web (applied before the login: the watermark has passed it),
        # then a login while the visit is open: the customer takes the anonymous visit over and
        # its purchases' transactions with it, so the shop's confirmation re-sent under the
        # customer is a copy, and so is the guest order re-sent again by the device alone
        # (the linked device's events, even from before the login, go to the customer).
        "web_order_re_sent_across_a_login_counts_once",
        [
            web(0, "page_view", "w56", page="/cart"),
            receipt(60, "o6", "O-6", None, "w56", channel="web"),
            web(6 * M, "login", "w56", "c56"),
            receipt(7 * M, "o6-confirmed", "O-6", "c56", "w56", channel="web"),
            receipt(60, "o6-guest-again", "O-6", None, "w56", channel="web"),
        ],
        # The guest copy arrives last, from before the login: put in its place (revised, not
        # late), a copy opens no session of its own, so the visit has the 4 other events.
        Expect(
            [S("c56", 4, ("web",), converted=True)],
            links=[("w56", "c56")],
            duplicate_transactions=2,
            revenue=50.0,
            conversions=1,
            session_revenue=50.0,
            resolved_persons={"o6": "c56", "o6-confirmed": "c56", "o6-guest-again": "c56"},
        ),
    ),
]
