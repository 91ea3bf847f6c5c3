"""An independent, batch re-computation of what the streaming core should have stored.

Intuition: the core decides incrementally, with a watermark, state and merges; the oracle sees
the whole input at once and recomputes the same definitions the slow, obvious way (sort each
person's events, cut at gaps and the cap, count). It shares no code with `streams.core`: every
rule below is written from its definition in the README ("What Parcours concludes"), so a bug in
the core's bookkeeping shows up as a disagreement. It only applies to inputs without late events;
the tests choose such inputs or check the parts that hold anyway.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import pairwise

GAP_MS = 30 * 60_000
CAP_MS = 24 * 3600_000
VIEWS = {"page_view", "screen_view", "view_item_list", "view_item", "view_cart"}
CHECKOUT = {"begin_checkout", "add_shipping_info", "add_payment_info"}
#: Checkout steps in order, for checkout_loop ("back to the cart or an earlier step").
STEP_RANK = {"view_cart": 0, "begin_checkout": 1, "add_shipping_info": 2, "add_payment_info": 3}
CHECKOUT_TIMEOUT_MS = 60 * 60_000
RAGE_CLICKS, RAGE_WINDOW_MS = 3, 1_000
ZERO_SEARCHES = 3
CONTACT_WINDOW_MS, CONTACT_DISTINCT = 24 * 3600_000, 2
MINUTE_MS = 60_000


@dataclass(frozen=True)
class OracleEvent:
    event_id: str
    event_type: str
    ts_ms: int
    person_id: str
    results_count: int | None = None
    channel: str = ""
    device_id: str | None = None
    element: str | None = None
    medium: str | None = None

    @property
    def order(self) -> tuple[int, str]:
        return (self.ts_ms, self.event_id)


@dataclass(frozen=True)
class OracleSession:
    person_id: str
    started_ms: int
    ended_ms: int
    events: int
    views: int
    bounced: bool
    converted: bool
    evs: tuple[OracleEvent, ...] = field(default=(), compare=False, repr=False)


def by_person(events: list[OracleEvent]) -> dict[str, list[OracleEvent]]:
    out: dict[str, list[OracleEvent]] = defaultdict(list)
    for ev in events:
        out[ev.person_id].append(ev)
    for evs in out.values():
        evs.sort(key=lambda e: e.order)
    return out


def sessions_of(events: list[OracleEvent]) -> list[OracleSession]:
    out: list[OracleSession] = []
    for person, evs in by_person(events).items():
        current: list[OracleEvent] = []
        for ev in evs:
            if current and (
                ev.ts_ms - current[-1].ts_ms > GAP_MS or ev.ts_ms - current[0].ts_ms >= CAP_MS
            ):
                out.append(_summary(person, current))
                current = []
            current.append(ev)
        if current:
            out.append(_summary(person, current))
    return out


def _summary(person: str, evs: list[OracleEvent]) -> OracleSession:
    views = sum(1 for e in evs if e.event_type in VIEWS)
    converted = any(e.event_type == "purchase" for e in evs)
    duration = evs[-1].ts_ms - evs[0].ts_ms
    engaged = duration > 10_000 or views >= 2 or converted
    return OracleSession(
        person, evs[0].ts_ms, evs[-1].ts_ms, len(evs), views, not engaged, converted, tuple(evs)
    )


def key(s: OracleSession) -> tuple[str, int, int, int, int, bool, bool]:
    return (s.person_id, s.started_ms, s.ended_ms, s.events, s.views, s.bounced, s.converted)


def session_counts(sessions: list[OracleSession]) -> Counter[str]:
    return Counter(
        {
            "sessions": len(sessions),
            "bounced": sum(s.bounced for s in sessions),
            "converted": sum(s.converted for s in sessions),
        }
    )


# --- friction signals, from their definitions ------------------------------------------------


def session_signals(session: OracleSession) -> Counter[str]:
    """The rules decided within one session."""
    evs = session.evs
    types = [e.event_type for e in evs]
    out: Counter[str] = Counter()
    if session.bounced:
        out["bounce"] += 1
    # cart_abandoned: an add_to_cart, and neither checkout activity nor a purchase
    if "add_to_cart" in types and not (CHECKOUT & set(types)) and "purchase" not in types:
        out["cart_abandoned"] += 1
    # search_frustration: at least 3 searches with zero results (once per session)
    zero = sum(1 for e in evs if e.event_type == "search" and e.results_count == 0)
    if zero >= ZERO_SEARCHES:
        out["search_frustration"] += 1
    # payment_failure: 2+ payment errors, or an error not followed by a purchase (once)
    errors = [i for i, t in enumerate(types) if t == "payment_error"]
    if len(errors) >= 2 or (errors and "purchase" not in types[errors[-1] + 1 :]):
        out["payment_failure"] += 1
    # error_hit: every exception
    out["error_hit"] += types.count("exception")
    # checkout_loop: going back from a later checkout step (begin_checkout or further) to the
    # cart or an earlier step, at least twice (once per session)
    ranks = [STEP_RANK[t] for t in types if t in STEP_RANK]
    backs = sum(1 for a, b in pairwise(ranks) if a >= 1 and b < a)
    if backs >= 2:
        out["checkout_loop"] += 1
    return +out


def rage_clicks(evs: list[OracleEvent]) -> int:
    """3+ clicks on the same element and device within 1 s; one per burst (a burst goes on
    while clicks on that element keep coming within 1 s of each other)."""
    count = 0
    burst: list[int] = []
    target: tuple[str | None, str | None] | None = None
    fired = False
    for e in evs:
        if e.event_type != "click":
            continue
        if (e.element, e.device_id) != target or not burst or e.ts_ms - burst[-1] > RAGE_WINDOW_MS:
            target, burst, fired = (e.element, e.device_id), [], False
        burst.append(e.ts_ms)
        last = burst[-RAGE_CLICKS:]
        if not fired and len(last) == RAGE_CLICKS and last[-1] - last[0] <= RAGE_WINDOW_MS:
            fired = True
            count += 1
    return count


def repeat_contacts(evs: list[OracleEvent]) -> int:
    """Support contacts through 2+ different media or channels within 24 h; afresh after."""
    count = 0
    recent: list[OracleEvent] = []
    for e in evs:
        if e.event_type != "support_contact":
            continue
        recent = [c for c in recent if e.ts_ms - c.ts_ms <= CONTACT_WINDOW_MS] + [e]
        if (
            len({c.medium for c in recent}) >= CONTACT_DISTINCT
            or len({c.channel for c in recent}) >= CONTACT_DISTINCT
        ):
            count += 1
            recent = []
    return count


def checkout_fates(evs: list[OracleEvent]) -> Counter[str]:
    """Checkout attempts: open at a checkout step, extended by more steps; a purchase closes one
    (on another channel than the attempt's: channel_switch); 60 min after its last step with no
    purchase it is abandoned (also at the end of the input)."""
    out: Counter[str] = Counter()
    attempt: tuple[str, int] | None = None  # (channel, last step ms)
    for e in evs:
        if attempt is not None and e.ts_ms > attempt[1] + CHECKOUT_TIMEOUT_MS:
            out["checkout_abandoned"] += 1
            attempt = None
        if e.event_type in CHECKOUT:
            attempt = (attempt[0] if attempt else e.channel, e.ts_ms)
        elif e.event_type == "purchase" and attempt is not None:
            if e.channel != attempt[0]:
                out["channel_switch"] += 1
            attempt = None
    if attempt is not None:
        out["checkout_abandoned"] += 1
    return out


def signals_of(events: list[OracleEvent]) -> Counter[str]:
    """Every signal type the oracle can recompute (all but quick_back), counted."""
    out: Counter[str] = Counter()
    for session in sessions_of(events):
        out.update(session_signals(session))
    for evs in by_person(events).values():
        out["rage_click"] += rage_clicks(evs)
        out["repeat_contact"] += repeat_contacts(evs)
        out.update(checkout_fates(evs))
    return +out


def events_per_minute(events: list[OracleEvent]) -> Counter[tuple[int, str, str]]:
    """Per (minute start ms, channel, event type): events."""
    return Counter((e.ts_ms - e.ts_ms % MINUTE_MS, e.channel, e.event_type) for e in events)
