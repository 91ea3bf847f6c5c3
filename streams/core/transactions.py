"""Purchases deduplicated by transaction: a receipt sent twice is one purchase.

Intuition: event ids catch a re-sent *event*; they cannot catch a re-sent *purchase* that a
till or an order system exports again under a new event id (a POS re-export, a retried webhook
that mints its ids). What identifies the purchase is its `properties.transaction_id`. So each
person remembers the transaction ids of their purchases for the dedup horizon
(`JourneyConfig.dedup_horizon_ms`, the same horizon as event ids), and a purchase whose
transaction the person already made within it is a *copy*: kept and stored, flagged
`duplicate_transaction`, an event of its session, but not a purchase again (no revenue, no
conversion, no per-minute conversion or revenue, no funnel step, it neither closes a checkout
attempt nor answers a payment error). A copy joins the session it falls in, or, arriving after
that session closed, is attributed to it and flagged `late`, like any event; it never opens a
session of its own (that would be a one-event visit that never happened, a false bounce): with
no session to join it is stored with an empty `session_id`. The first purchase the core
applies counts; since the core applies a person's events in event-time order, that is the
earlier one unless the copy arrived late.

"Same person" is the person the core holds the purchase under when it applies it: the customer
(or the anonymous `anon:<device>`, or the guest `guest:<store_id>/<transaction_id>` of a
receipt with neither), together with what that customer took over from an anonymous person
when its device logged in (`merges.take_over` combines both memories; from then on the
device's events, even those from before the login, go to the customer). The same transaction id
under two different persons counts for each: receipt numbers are only unique per till or per
shop, and two customers are never merged. A copy under an anonymous person that only the
query-time re-attribution (identity links, `events_resolved`) gives to the customer is not
caught, e.g. a purchase on a device more than the dedup horizon before its first login: the
core decides when it applies the purchase and never rewrites a stored row.

The horizon is in event time: a purchase whose own time is at most `t + dedup_horizon_ms`
after a counted purchase `t` of the same transaction is a copy, whenever it arrives. So a copy
arriving late (the nightly POS batch) is judged as it would be in time order, and a revision's
replay (which applies events at their own time) judges exactly as the live run did: the memory
is kept `revision_horizon_ms` longer than the dedup horizon, as long as a late copy can still be
put in its place. Past that it is forgotten and a copy counts again, twice in revenue
(documented in the README). The memory is `streams.core.dedup`'s: 16 bytes per remembered
purchase, and an empty memory is a shared empty `bytes`, so the persons who bought nothing
(nearly all) pay only their state's one slot.
"""

from __future__ import annotations

from schemas import Event
from streams.core import dedup
from streams.core.config import JourneyConfig
from streams.core.identifiers import stable_hash64

#: Event type a copy is folded into its session as: none of the session's counters or rules
#: react to it (`session.record_event` counts it as an event, and nothing more).
COPY = "duplicate_transaction"


def transaction_key(transaction_id: str) -> bytes:
    """The 8-byte memory key of a transaction id (a namespace apart from event ids)."""
    return stable_hash64("transaction", transaction_id).to_bytes(8, "big")


def transaction_of(ev: Event) -> str | None:
    """The transaction a purchase names (the contract requires it; None for anything else)."""
    if ev.event_type != "purchase":
        return None
    tx = ev.properties.get("transaction_id")
    return tx if isinstance(tx, str) and tx else None


def check(memory: bytes, ev: Event, watermark_ms: int, config: JourneyConfig) -> tuple[bool, bytes]:
    """(whether `ev` is a copy of a purchase in `memory`, the memory after it).

    A purchase that counts is remembered at its own event time; a copy changes nothing, so its
    transaction is forgotten at the horizon of the purchase that counted, not extended.
    """
    tx = transaction_of(ev)
    if tx is None:
        return False, memory
    key = transaction_key(tx)
    if memory:
        horizon = ev.ts_ms - config.dedup_horizon_ms
        remembered = dedup.time_of(memory, key)
        if remembered is not None and remembered >= horizon:
            return True, memory
    return False, dedup.remember(memory, key, ev.ts_ms)


def forget(memory: bytes, watermark_ms: int, config: JourneyConfig) -> bytes:
    """`memory` without the transactions the horizon has passed."""
    return dedup.forget_before(memory, watermark_ms - _kept_ms(config))


def _kept_ms(config: JourneyConfig) -> int:
    """How long behind the watermark a purchase is remembered: a late copy can arrive (and be
    judged by its own time) until the revision horizon has passed the dedup horizon's end."""
    return config.dedup_horizon_ms + config.revision_horizon_ms


def deadline(memory: bytes, config: JourneyConfig) -> int | None:
    """The watermark at which `forget` next changes `memory` (None: nothing remembered)."""
    oldest = dedup.oldest(memory)
    return None if oldest is None else oldest + _kept_ms(config) + 1
