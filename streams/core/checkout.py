"""Checkout attempts: opened by checkout activity, closed by a purchase or by silence.

Intuition: a checkout attempt outlives sessions (a person may leave the web checkout and pay at
the till 40 minutes later), so it is person state, not session state. It is decided on event
time only: the attempt is abandoned once the watermark has passed its last checkout activity by
the timeout, so a replay of the same events reaches the same verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streams.core.session import CHECKOUT_STEPS

_STEP_NAMES = {name: name for name in CHECKOUT_STEPS}


@dataclass(slots=True)
class CheckoutAttempt:
    opened_ms: int
    last_ms: int
    channel: str
    device_id: str | None
    device_type: str | None
    session_id: str
    furthest_step: str


def open_or_extend(
    attempt: CheckoutAttempt | None,
    *,
    event_type: str,
    ts_ms: int,
    channel: str,
    device_id: str | None,
    device_type: str | None,
    session_id: str,
) -> CheckoutAttempt:
    step = _STEP_NAMES[event_type]  # one shared string, not the event's own copy
    if attempt is None:
        return CheckoutAttempt(ts_ms, ts_ms, channel, device_id, device_type, session_id, step)
    if ts_ms > attempt.last_ms:
        attempt.last_ms = ts_ms
    attempt.opened_ms = min(attempt.opened_ms, ts_ms)
    if CHECKOUT_STEPS[step] > CHECKOUT_STEPS[attempt.furthest_step]:
        attempt.furthest_step = step
    return attempt


def is_abandoned(attempt: CheckoutAttempt, watermark_ms: int, timeout_ms: int) -> bool:
    return watermark_ms > attempt.last_ms + timeout_ms


def abandonment_details(attempt: CheckoutAttempt, timeout_ms: int) -> dict[str, Any]:
    return {
        "opened_at_ms": attempt.opened_ms,
        "furthest_step": attempt.furthest_step,
        "timeout_min": timeout_ms / 60_000,
    }


def switch_details(attempt: CheckoutAttempt, purchase_channel: str, ts_ms: int) -> dict[str, Any]:
    return {
        "checkout_channel": attempt.channel,
        "purchase_channel": purchase_channel,
        "minutes_after_checkout": round((ts_ms - attempt.last_ms) / 60_000, 2),
        "furthest_step": attempt.furthest_step,
    }


def combine(a: CheckoutAttempt | None, b: CheckoutAttempt | None) -> CheckoutAttempt | None:
    """Two attempts of one person seen under two identities: the earlier one, extended."""
    if a is None or b is None:
        return a or b
    first, second = (a, b) if (a.opened_ms, a.session_id) <= (b.opened_ms, b.session_id) else (b, a)
    first.last_ms = max(first.last_ms, second.last_ms)
    if CHECKOUT_STEPS[second.furthest_step] > CHECKOUT_STEPS[first.furthest_step]:
        first.furthest_step = second.furthest_step
    return first
