"""Friction rules: small objects, each with its definition and thresholds in one place.

A rule looks at one session's counters (or, for person-wide rules, the person's recent contacts
and checkout attempt) and returns the signal's `details` when it fires, else None. Rules never
build records or ids: `streams.core.journey` does that, so every signal gets the same envelope
(type, person, session, channel, device, time) whatever the rule.

Every threshold is a dataclass field: build `FrictionRules(rage_click=RageClick(min_clicks=4))`
to change one without touching the others. Users change them through settings
(streams/journey_settings.py: `PARCOURS_JOURNEY_RAGE_CLICK_MIN_CLICKS=4` or `parcours.toml`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.core.session import (
    CHECKOUT_SEEN,
    CHECKOUT_STEPS,
    CO_FIRED,
    CONVERTED,
    PAY_FIRED,
    PAY_PENDING,
    RC_FIRED,
    SEARCH_FIRED,
    SessionState,
    known_device,
    rare_counters,
)

Details = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Bounce:
    """`bounce` (the "rebond"): a session that ends not engaged.

    Engaged means longer than `JourneyConfig.engaged_min_duration_ms` (10 s), or at least
    `engaged_min_views` (2) views, or a purchase. Raised once, when the session closes.
    """

    type = "bounce"

    def on_close(self, s: SessionState, engaged: bool) -> Details | None:
        if engaged:
            return None
        return {"landing_page": s.landing_page, "duration_s": (s.last_ms - s.started_ms) / 1000}


@dataclass(frozen=True, slots=True)
class QuickBack:
    """`quick_back`: a view followed within `max_ms` (5 s) by a return to the previous page/screen.

    Only page/screen views on the same device count: page A, then B, then A again less than
    5 s after B was opened means B was not what the person wanted.
    """

    type = "quick_back"
    max_ms: int = 5_000

    def on_view(self, s: SessionState, page: str, ts_ms: int, device: str | None) -> Details | None:
        fired: Details | None = None
        if s.qb_device != device:
            s.qb_prev_page, s.qb_cur_page = None, None
        elif (
            s.qb_cur_page is not None
            and page == s.qb_prev_page
            and page != s.qb_cur_page
            and 0 <= ts_ms - s.qb_cur_ms <= self.max_ms
        ):
            fired = {
                "left_page": s.qb_cur_page,
                "back_to": page,
                "seconds": (ts_ms - s.qb_cur_ms) / 1000,
            }
        s.qb_prev_page, s.qb_cur_page, s.qb_cur_ms, s.qb_device = s.qb_cur_page, page, ts_ms, device
        return fired


@dataclass(frozen=True, slots=True)
class CartAbandoned:
    """`cart_abandoned`: a session with `add_to_cart` that ends without checkout activity
    (`begin_checkout`, `add_shipping_info`, `add_payment_info`) or purchase. Raised at close."""

    type = "cart_abandoned"

    def on_close(self, s: SessionState, engaged: bool) -> Details | None:
        if s.cart_items > 0 and not s.flags & (CHECKOUT_SEEN | CONVERTED):
            return {"items_added": s.cart_items}
        return None


@dataclass(frozen=True, slots=True)
class CheckoutAbandoned:
    """`checkout_abandoned` and `channel_switch`: the fate of a checkout attempt.

    An attempt opens at a person's first checkout activity and stays open while more checkout
    activity follows. A purchase by the person on any channel closes it: on the attempt's own
    channel as converted (no signal), on another channel as `channel_switch` (for example a store
    receipt after a web checkout: a success, reported so teams see omnichannel completion). With
    no purchase for `timeout_ms` (60 min) after its last checkout activity, it closes as
    `checkout_abandoned`. Decided on event time through the watermark, so replays agree.
    """

    type = "checkout_abandoned"
    switch_type = "channel_switch"
    timeout_ms: int = 60 * 60_000


@dataclass(frozen=True, slots=True)
class CheckoutLoop:
    """`checkout_loop`: within a session, going back from a later checkout step to the cart or an
    earlier step at least `min_backtracks` (2) times. Steps in order: view_cart, begin_checkout,
    add_shipping_info, add_payment_info. Raised once per session, at the backtrack that crosses
    the threshold."""

    type = "checkout_loop"
    min_backtracks: int = 2

    def on_event(self, s: SessionState, event_type: str) -> Details | None:
        step = CHECKOUT_STEPS.get(event_type)
        if step is None:
            return None
        fired: Details | None = None
        if s.co_step >= 1 and step < s.co_step:
            rare = rare_counters(s)
            rare.co_backs += 1
            if rare.co_backs >= self.min_backtracks and not s.flags & CO_FIRED:
                s.flags |= CO_FIRED
                fired = {"backtracks": rare.co_backs, "back_to": event_type}
        s.co_step = step
        return fired


@dataclass(frozen=True, slots=True)
class PaymentFailure:
    """`payment_failure`: at least `min_errors` (2) `payment_error` in a session (raised at the
    error that reaches it), or a `payment_error` not followed by a purchase in the session (raised
    at close). At most once per session."""

    type = "payment_failure"
    min_errors: int = 2

    def on_event(self, s: SessionState, event_type: str, props: Details) -> Details | None:
        if event_type == "purchase":
            s.flags &= ~PAY_PENDING
            return None
        if event_type != "payment_error":
            return None
        rare = rare_counters(s)
        rare.pay_errors += 1
        s.flags |= PAY_PENDING
        if rare.pay_errors >= self.min_errors and not s.flags & PAY_FIRED:
            s.flags |= PAY_FIRED
            return {"errors": rare.pay_errors, "reason": props.get("reason")}
        return None

    def on_close(self, s: SessionState, engaged: bool) -> Details | None:
        if s.flags & PAY_PENDING and not s.flags & PAY_FIRED:
            s.flags |= PAY_FIRED
            errors = 0 if s.rare is None else s.rare.pay_errors
            return {"errors": errors, "reason": "not_followed_by_purchase"}
        return None


@dataclass(frozen=True, slots=True)
class SearchFrustration:
    """`search_frustration`: at least `min_zero_results` (3) searches with zero results in a
    session. Raised once per session, at the search that reaches the threshold."""

    type = "search_frustration"
    min_zero_results: int = 3

    def on_event(self, s: SessionState, event_type: str, props: Details) -> Details | None:
        if event_type != "search" or props.get("results_count") != 0:
            return None
        rare = rare_counters(s)
        rare.zero_searches += 1
        if rare.zero_searches >= self.min_zero_results and not s.flags & SEARCH_FIRED:
            s.flags |= SEARCH_FIRED
            return {
                "zero_result_searches": rare.zero_searches,
                "last_term": props.get("search_term"),
            }
        return None


@dataclass(frozen=True, slots=True)
class RageClick:
    """`rage_click`: at least `min_clicks` (3) clicks on the same element, same device, within
    `window_ms` (1 s). One signal per burst: the burst goes on while clicks keep coming on that
    element within the window of each other."""

    type = "rage_click"
    min_clicks: int = 3
    window_ms: int = 1_000

    def on_event(
        self, s: SessionState, event_type: str, props: Details, device_id: str | None, ts: int
    ) -> Details | None:
        if event_type != "click":
            return None
        element = props.get("element")
        element = element if isinstance(element, str) else None
        rare = rare_counters(s)
        same_target = element == rare.rc_element and device_id == rare.rc_device
        if (
            not same_target
            or not rare.rc_times
            or not 0 <= ts - rare.rc_times[-1] <= self.window_ms
        ):
            rare.rc_element, rare.rc_device = element, known_device(s, device_id)
            rare.rc_times = ()
            s.flags &= ~RC_FIRED
        # Only the last min_clicks timestamps matter; the rest would just grow the state.
        times = rare.rc_times = (*rare.rc_times, ts)[-self.min_clicks :]
        full = len(times) == self.min_clicks
        if full and not s.flags & RC_FIRED and ts - times[0] <= self.window_ms:
            s.flags |= RC_FIRED
            return {"element": element, "clicks": self.min_clicks, "window_ms": self.window_ms}
        return None


@dataclass(frozen=True, slots=True)
class ErrorHit:
    """`error_hit`: any `exception` event (the product failed in front of the person)."""

    type = "error_hit"

    def on_event(self, event_type: str, props: Details) -> Details | None:
        if event_type != "exception":
            return None
        return {
            "description": props.get("description"),
            "fatal": props.get("fatal"),
        }


@dataclass(frozen=True, slots=True)
class RepeatContact:
    """`repeat_contact`: support contacts through at least `min_distinct` (2) different media
    (chat, phone, email, in_store) or channels within `window_ms` (24 h): the customer had to
    repeat themselves. After a signal the count starts afresh."""

    type = "repeat_contact"
    min_distinct: int = 2
    window_ms: int = 24 * 3600_000

    def on_contact(
        self, contacts: tuple[tuple[int, str, str], ...], ts_ms: int, medium: str, channel: str
    ) -> tuple[tuple[tuple[int, str, str], ...], Details | None]:
        """The person's contacts after this one, and the signal's details if it fires."""
        window = self.window_ms
        kept = tuple(c for c in contacts if ts_ms - window <= c[0] <= ts_ms + window)
        kept += ((ts_ms, medium, channel),)
        media = sorted({c[1] for c in kept})
        channels = sorted({c[2] for c in kept})
        if len(media) >= self.min_distinct or len(channels) >= self.min_distinct:
            return (), {"media": media, "channels": channels}
        return kept, None


@dataclass(frozen=True, slots=True)
class FrictionRules:
    """The rule set the core applies; replace any rule to change its thresholds."""

    bounce: Bounce = field(default_factory=Bounce)
    quick_back: QuickBack = field(default_factory=QuickBack)
    cart_abandoned: CartAbandoned = field(default_factory=CartAbandoned)
    checkout_abandoned: CheckoutAbandoned = field(default_factory=CheckoutAbandoned)
    checkout_loop: CheckoutLoop = field(default_factory=CheckoutLoop)
    payment_failure: PaymentFailure = field(default_factory=PaymentFailure)
    search_frustration: SearchFrustration = field(default_factory=SearchFrustration)
    rage_click: RageClick = field(default_factory=RageClick)
    error_hit: ErrorHit = field(default_factory=ErrorHit)
    repeat_contact: RepeatContact = field(default_factory=RepeatContact)


#: The event types a per-event rule above reacts to (`PaymentFailure`, `SearchFrustration`,
#: `RageClick`): the journey skips those rules for every other event, which is most of them.
EVENT_RULE_TYPES = frozenset({"purchase", "payment_error", "search", "click"})

#: Every signal type the core can raise, for metrics, docs and validation of user input.
SIGNAL_TYPES = (
    "bounce",
    "quick_back",
    "cart_abandoned",
    "checkout_abandoned",
    "channel_switch",
    "checkout_loop",
    "payment_failure",
    "search_frustration",
    "rage_click",
    "error_hit",
    "repeat_contact",
)
