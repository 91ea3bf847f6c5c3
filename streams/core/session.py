"""One person's open session: compact, plain state and the arithmetic on it.

A session is per *person*, not per device: a customer who starts on the app and finishes in
the store has one session. The state is a slotted dataclass of primitives, a few hundred bytes
(tests/perf/core_throughput.py prints it), so that millions can be open at once and so that
Faust can store it in a changelog table as a plain dict (`session_to_dict` / `session_from_dict`).

What keeps it small: channels are a bit mask (three channels, no list), devices an immutable
tuple (one device in the common case), and a device id or device type is held as one string
object however many events repeat it (`known_device`, `DEVICE_TYPES`): each event brings its
own copy of those strings, and keeping the copies would double or triple the state.

Friction rules keep their running counters here (the `qb_*`, `rc_*`, `pay_*`, `co_*` fields):
one flat object beats a dict of per-rule dicts by hundreds of bytes per open session.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from schemas import Channel, Event
from streams.core.records import SessionSummary

#: Event types that count as a "view" in session summaries.
VIEW_TYPES = frozenset({"page_view", "screen_view", "view_item_list", "view_item", "view_cart"})
#: Steps of the checkout, in order; `view_cart` (0) is the cart a checkout loop goes back to.
CHECKOUT_STEPS = {
    "view_cart": 0,
    "begin_checkout": 1,
    "add_shipping_info": 2,
    "add_payment_info": 3,
}
CHECKOUT_ACTIVITY = frozenset({"begin_checkout", "add_shipping_info", "add_payment_info"})
#: Channel -> its bit in `SessionState.channels`.
CHANNEL_BITS = {c.value: 1 << i for i, c in enumerate(Channel)}
#: Bit mask -> the channels it holds, sorted (as summaries list them).
_CHANNELS_OF = {
    mask: tuple(sorted(c for c, bit in CHANNEL_BITS.items() if mask & bit))
    for mask in range(1 << len(CHANNEL_BITS))
}
#: The device types the contract allows, each as one shared string (the decoder refuses others).
DEVICE_TYPES = {t: t for t in ("desktop", "mobile", "tablet", "kiosk", "pos")}


@dataclass(slots=True)
class SessionState:
    session_id: str
    started_ms: int
    last_ms: int
    events: int = 0
    views: int = 0
    #: Channels touched, as a bit mask (`CHANNEL_BITS`).
    channels: int = 0
    #: Devices touched, in order of first appearance.
    devices: tuple[str, ...] = ()
    landing_page: str | None = None
    landing_ms: int = 0
    exit_page: str | None = None
    exit_ms: int = 0
    converted: bool = False
    revenue: float = 0.0
    friction_count: int = 0
    # Where the newest event came from: signals decided at close are reported there.
    last_channel: str = ""
    last_device: str | None = None
    last_device_type: str | None = None
    # Rule counters (see streams/core/friction.py).
    cart_items: int = 0
    checkout_seen: bool = False
    qb_prev_page: str | None = None
    qb_cur_page: str | None = None
    qb_cur_ms: int = 0
    qb_device: str | None = None
    rc_element: str | None = None
    rc_device: str | None = None
    rc_times: tuple[int, ...] = ()
    rc_fired: bool = False
    zero_searches: int = 0
    pay_errors: int = 0
    pay_pending: bool = False
    pay_fired: bool = False
    co_step: int = -1
    co_backs: int = 0
    co_fired: bool = False
    search_fired: bool = False


def device_type_of(ev: Event) -> str | None:
    """The event's device type as one shared string (`DEVICE_TYPES`)."""
    value = ev.device_type
    return None if value is None else DEVICE_TYPES.get(value, value)


def open_session(session_id: str, ts_ms: int) -> SessionState:
    return SessionState(session_id=session_id, started_ms=ts_ms, last_ms=ts_ms)


def known_device(s: SessionState, device_id: str | None) -> str | None:
    """`device_id` as the session already holds it (the same string object), if it does."""
    if device_id is not None:
        for known in s.devices:
            if known == device_id:
                return known
    return device_id


def record_event(
    s: SessionState,
    *,
    event_type: str,
    ts_ms: int,
    channel: str,
    device_id: str | None,
    device_type: str | None,
    page: str | None,
    value: float | None,
) -> str | None:
    """Fold one event into the session's summary counters (rule counters are the rules' job).

    Returns the device id as the session holds it, for the rules to keep the same object.
    """
    s.events += 1
    if device_id is not None:
        for known in s.devices:
            if known == device_id:
                device_id = known
                break
        else:
            s.devices = (*s.devices, device_id)
    if ts_ms < s.started_ms:
        s.started_ms = ts_ms
    if ts_ms >= s.last_ms:
        s.last_ms = ts_ms
        s.last_channel = channel
        s.last_device = device_id
        s.last_device_type = device_type
    if event_type in VIEW_TYPES:
        s.views += 1
    s.channels |= CHANNEL_BITS[channel]
    if page is not None and event_type in ("page_view", "screen_view"):
        if s.landing_page is None or ts_ms < s.landing_ms:
            s.landing_page, s.landing_ms = page, ts_ms
        if s.exit_page is None or ts_ms >= s.exit_ms:
            s.exit_page, s.exit_ms = page, ts_ms
    if event_type == "purchase":
        s.converted = True
        s.revenue += value or 0.0
    elif event_type == "add_to_cart":
        s.cart_items += 1
    elif event_type in CHECKOUT_ACTIVITY:
        s.checkout_seen = True
    return device_id


def is_engaged(s: SessionState, min_duration_ms: int, min_views: int) -> bool:
    """Engaged: lasted longer than `min_duration_ms`, or had `min_views` views, or converted."""
    return (s.last_ms - s.started_ms) > min_duration_ms or s.views >= min_views or s.converted


def summarise(s: SessionState, person_id: str, engaged: bool) -> SessionSummary:
    return SessionSummary(
        session_id=s.session_id,
        person_id=person_id,
        started_at_ms=s.started_ms,
        ended_at_ms=s.last_ms,
        duration_s=(s.last_ms - s.started_ms) / 1000,
        events=s.events,
        views=s.views,
        channels=_CHANNELS_OF[s.channels],
        devices=tuple(sorted(s.devices)),
        landing_page=s.landing_page,
        exit_page=s.exit_page,
        engaged=engaged,
        bounced=not engaged,
        converted=s.converted,
        revenue=round(s.revenue, 2),
        friction_count=s.friction_count,
    )


def absorb(into: SessionState, other: SessionState) -> None:
    """Merge `other` (an anonymous session whose device just got linked) into `into`.

    Intuition: both sessions describe the same visit seen from two identities, so counters add,
    sets unite, the earliest start and landing and the latest end and exit win, and a rule's
    "already fired" flags are kept so one story is not reported twice.
    """
    into.events += other.events
    into.views += other.views
    into.started_ms = min(into.started_ms, other.started_ms)
    if other.last_ms > into.last_ms:
        into.last_ms = other.last_ms
        into.last_channel, into.last_device = other.last_channel, other.last_device
        into.last_device_type = other.last_device_type
    into.channels |= other.channels
    into.devices += tuple(d for d in other.devices if d not in into.devices)
    if other.landing_page is not None and (
        into.landing_page is None or other.landing_ms < into.landing_ms
    ):
        into.landing_page, into.landing_ms = other.landing_page, other.landing_ms
    if other.exit_page is not None and (into.exit_page is None or other.exit_ms >= into.exit_ms):
        into.exit_page, into.exit_ms = other.exit_page, other.exit_ms
    into.converted = into.converted or other.converted
    into.revenue += other.revenue
    into.friction_count += other.friction_count
    into.cart_items += other.cart_items
    into.checkout_seen = into.checkout_seen or other.checkout_seen
    into.zero_searches += other.zero_searches
    into.search_fired = into.search_fired or other.search_fired
    into.pay_errors += other.pay_errors
    into.pay_pending = (into.pay_pending or other.pay_pending) and not (
        other.converted and other.last_ms >= into.last_ms
    )
    into.pay_fired = into.pay_fired or other.pay_fired
    into.co_backs += other.co_backs
    into.co_fired = into.co_fired or other.co_fired


def session_to_dict(s: SessionState) -> dict[str, Any]:
    data = asdict(s)
    data["channels"] = list(_CHANNELS_OF[s.channels])
    return data


_FIELDS = frozenset(f.name for f in fields(SessionState))


def session_from_dict(data: dict[str, Any]) -> SessionState:
    """Inverse of `session_to_dict`; also reads the dicts of older versions (a `person_id`,
    lists for `devices` and `rc_times`)."""
    values = {k: v for k, v in data.items() if k in _FIELDS}
    values["channels"] = sum(CHANNEL_BITS[c] for c in set(data.get("channels", ())))
    values["devices"] = tuple(data.get("devices", ()))
    values["rc_times"] = tuple(data.get("rc_times", ()))
    return SessionState(**values)
