"""One person's open session: compact, plain state and the arithmetic on it.

A session is per *person*, not per device: a customer who starts on the app and finishes in
the store has one session. The state is a slotted dataclass of primitives, a few hundred bytes
(tests/perf/core_throughput.py prints it), so that millions can be open at once and so that
Faust can store it in a changelog table as a plain dict (`session_to_dict` / `session_from_dict`).

What keeps it small: every slot costs 8 bytes per open session, so the state has as few as
the common session needs. Channels are a bit mask (three channels, no list) and so are the
yes/no facts (`flags`: converted, checkout seen, which rules already fired; under 256, the
value is one of Python's shared small ints, so the mask itself costs nothing). Devices are the
device id itself in the common one-device session, a tuple only from the second device on (a
1-tuple costs 48 bytes). A device id, device type or page is held as one string object however
many events repeat it (`known_device`, `DEVICE_TYPES`, `streams.core.strings`): each event
brings its own copy of those strings, and keeping the copies would double or triple the state.

Friction rules keep their running counters here: one flat object beats a dict of per-rule dicts
by hundreds of bytes per open session. The counters most sessions never touch (rage clicks,
payment errors, zero-result searches, checkout backtracks: a few sessions in a hundred) live in
an optional `RareCounters` object, created by the first event that needs it: six slots fewer
in every other session.

In the plain-dict form (`session_to_dict`) every counter and flag keeps its own key, as it
always did: changelogs written before and after this layout read the same.
"""

from __future__ import annotations

from dataclasses import dataclass
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

# Bits of `SessionState.flags`, named as the dict form's keys (`FLAGS`).
CONVERTED = 1
CHECKOUT_SEEN = 2
RC_FIRED = 4
PAY_PENDING = 8
PAY_FIRED = 16
CO_FIRED = 32
SEARCH_FIRED = 64
#: A row of the session was written while it was open (`summarise(..., is_open=True)`): if it
#: is later absorbed by another session, its row must be withdrawn.
PUBLISHED = 128
FLAGS = {
    "converted": CONVERTED,
    "checkout_seen": CHECKOUT_SEEN,
    "rc_fired": RC_FIRED,
    "pay_pending": PAY_PENDING,
    "pay_fired": PAY_FIRED,
    "co_fired": CO_FIRED,
    "search_fired": SEARCH_FIRED,
    "published": PUBLISHED,
}


@dataclass(slots=True)
class RareCounters:
    """Rule counters few sessions need: created by the first event that does (see `rare`)."""

    rc_element: str | None = None
    rc_device: str | None = None
    rc_times: tuple[int, ...] = ()
    zero_searches: int = 0
    pay_errors: int = 0
    co_backs: int = 0


_NO_RARE = RareCounters()


@dataclass(slots=True)
class SessionState:
    session_id: str
    started_ms: int
    last_ms: int
    events: int = 0
    views: int = 0
    #: Channels touched, as a bit mask (`CHANNEL_BITS`).
    channels: int = 0
    #: Devices touched, in order of first appearance: None, the one device id, or a tuple of
    #: two or more (read them as a tuple through `devices`).
    device_ids: str | tuple[str, ...] | None = None
    landing_page: str | None = None
    landing_ms: int = 0
    exit_page: str | None = None
    exit_ms: int = 0
    #: Yes/no facts as a bit mask (`FLAGS`).
    flags: int = 0
    revenue: float = 0.0
    friction_count: int = 0
    # Where the newest event came from: signals decided at close are reported there.
    last_channel: str = ""
    last_device: str | None = None
    last_device_type: str | None = None
    # Rule counters (see streams/core/friction.py).
    cart_items: int = 0
    qb_prev_page: str | None = None
    qb_cur_page: str | None = None
    qb_cur_ms: int = 0
    qb_device: str | None = None
    co_step: int = -1
    rare: RareCounters | None = None

    @property
    def devices(self) -> tuple[str, ...]:
        d = self.device_ids
        return () if d is None else (d,) if isinstance(d, str) else d

    @property
    def converted(self) -> bool:
        return bool(self.flags & CONVERTED)

    @property
    def rc_times(self) -> tuple[int, ...]:
        return (self.rare or _NO_RARE).rc_times


def rare_counters(s: SessionState) -> RareCounters:
    """The session's rare counters, created on first use."""
    rare = s.rare
    if rare is None:
        rare = s.rare = RareCounters()
    return rare


def _device_ids(devices: tuple[str, ...]) -> str | tuple[str, ...] | None:
    return None if not devices else devices[0] if len(devices) == 1 else devices


def device_type_of(ev: Event) -> str | None:
    """The event's device type as one shared string (`DEVICE_TYPES`)."""
    value = ev.device_type
    return None if value is None else DEVICE_TYPES.get(value, value)


def open_session(session_id: str, ts_ms: int) -> SessionState:
    return SessionState(session_id=session_id, started_ms=ts_ms, last_ms=ts_ms)


def known_device(s: SessionState, device_id: str | None) -> str | None:
    """`device_id` as the session already holds it (the same string object), if it does."""
    known = s.device_ids
    if device_id is None or known is None:
        return device_id
    if isinstance(known, str):
        return known if known == device_id else device_id
    for d in known:
        if d == device_id:
            return d
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
        known = s.device_ids
        if known is None:
            s.device_ids = device_id
        elif isinstance(known, str):
            if known == device_id:
                device_id = known
            else:
                s.device_ids = (known, device_id)
        else:
            for d in known:
                if d == device_id:
                    device_id = d
                    break
            else:
                s.device_ids = (*known, device_id)
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
        s.flags |= CONVERTED
        s.revenue += value or 0.0
    elif event_type == "add_to_cart":
        s.cart_items += 1
    elif event_type in CHECKOUT_ACTIVITY:
        s.flags |= CHECKOUT_SEEN
    return device_id


def is_engaged(s: SessionState, min_duration_ms: int, min_views: int) -> bool:
    """Engaged: lasted longer than `min_duration_ms`, or had `min_views` views, or converted."""
    return (
        (s.last_ms - s.started_ms) > min_duration_ms
        or s.views >= min_views
        or bool(s.flags & CONVERTED)
    )


def session_version(events: int, *, is_open: bool = False, is_deleted: bool = False) -> int:
    """The version of a session's row: storage keeps the highest (docs/storage.md).

    Intuition: a session only ever grows (events are added, never taken away), and each state
    of it is written at most once as open, once as closed, once as withdrawn, in that order.
    So twice its event count, plus 1 once closed or 2 once withdrawn, grows with every row that
    supersedes an earlier one; it is computed from the session itself, so a replay writes the
    same versions and no counter has to be kept.
    """
    return 2 * events + (2 if is_deleted else 0 if is_open else 1)


def summarise(
    s: SessionState,
    person_id: str,
    engaged: bool,
    *,
    is_open: bool = False,
    is_deleted: bool = False,
) -> SessionSummary:
    """The session's row. An open one is not judged yet: it is neither engaged nor bounced
    until it closes (`engaged` says only what it is so far)."""
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
        bounced=not engaged and not is_open,
        converted=bool(s.flags & CONVERTED),
        revenue=round(s.revenue, 2),
        friction_count=s.friction_count,
        is_open=is_open,
        version=session_version(s.events, is_open=is_open, is_deleted=is_deleted),
        is_deleted=is_deleted,
        device_type=s.last_device_type,
    )


#: Flags that merge as "either session": a rule's "already fired" is kept so one story is not
#: reported twice. `PAY_PENDING` merges on its own terms (see `absorb`).
_OR_FLAGS = CONVERTED | CHECKOUT_SEEN | PAY_FIRED | CO_FIRED | SEARCH_FIRED


def absorb(into: SessionState, other: SessionState) -> None:
    """Merge `other` (an anonymous session whose device just got linked) into `into`.

    Intuition: both sessions describe the same visit seen from two identities, so counters add,
    sets unite, the earliest start and landing and the latest end and exit win, and a rule's
    "already fired" flags are kept so one story is not reported twice. The rage-click burst
    (`rc_*`) and the quick-back pair stay `into`'s own: a burst is on one device.
    """
    into.events += other.events
    into.views += other.views
    into.started_ms = min(into.started_ms, other.started_ms)
    pay_pending = bool((into.flags | other.flags) & PAY_PENDING) and not (
        other.flags & CONVERTED and other.last_ms >= into.last_ms
    )
    if other.last_ms > into.last_ms:
        into.last_ms = other.last_ms
        into.last_channel, into.last_device = other.last_channel, other.last_device
        into.last_device_type = other.last_device_type
    into.channels |= other.channels
    mine = into.devices
    into.device_ids = _device_ids(mine + tuple(d for d in other.devices if d not in mine))
    if other.landing_page is not None and (
        into.landing_page is None or other.landing_ms < into.landing_ms
    ):
        into.landing_page, into.landing_ms = other.landing_page, other.landing_ms
    if other.exit_page is not None and (into.exit_page is None or other.exit_ms >= into.exit_ms):
        into.exit_page, into.exit_ms = other.exit_page, other.exit_ms
    into.flags = (into.flags | (other.flags & _OR_FLAGS)) & ~PAY_PENDING
    if pay_pending:
        into.flags |= PAY_PENDING
    into.revenue += other.revenue
    into.friction_count += other.friction_count
    into.cart_items += other.cart_items
    theirs = other.rare
    if theirs is not None and (theirs.zero_searches or theirs.pay_errors or theirs.co_backs):
        rare = rare_counters(into)  # only for a count to add: `rare` is None or not all zero
        rare.zero_searches += theirs.zero_searches
        rare.pay_errors += theirs.pay_errors
        rare.co_backs += theirs.co_backs


def session_to_dict(s: SessionState) -> dict[str, Any]:
    """The flat dict earlier versions wrote (one key per counter and flag), so that changelogs
    read the same whichever version wrote them."""
    rare = s.rare or _NO_RARE
    flags = s.flags
    return {
        "session_id": s.session_id,
        "started_ms": s.started_ms,
        "last_ms": s.last_ms,
        "events": s.events,
        "views": s.views,
        "channels": list(_CHANNELS_OF[s.channels]),
        "devices": s.devices,
        "landing_page": s.landing_page,
        "landing_ms": s.landing_ms,
        "exit_page": s.exit_page,
        "exit_ms": s.exit_ms,
        "converted": bool(flags & CONVERTED),
        "revenue": s.revenue,
        "friction_count": s.friction_count,
        "last_channel": s.last_channel,
        "last_device": s.last_device,
        "last_device_type": s.last_device_type,
        "cart_items": s.cart_items,
        "checkout_seen": bool(flags & CHECKOUT_SEEN),
        "qb_prev_page": s.qb_prev_page,
        "qb_cur_page": s.qb_cur_page,
        "qb_cur_ms": s.qb_cur_ms,
        "qb_device": s.qb_device,
        "rc_element": rare.rc_element,
        "rc_device": rare.rc_device,
        "rc_times": rare.rc_times,
        "rc_fired": bool(flags & RC_FIRED),
        "zero_searches": rare.zero_searches,
        "pay_errors": rare.pay_errors,
        "pay_pending": bool(flags & PAY_PENDING),
        "pay_fired": bool(flags & PAY_FIRED),
        "co_step": s.co_step,
        "co_backs": rare.co_backs,
        "co_fired": bool(flags & CO_FIRED),
        "search_fired": bool(flags & SEARCH_FIRED),
        "published": bool(flags & PUBLISHED),
    }


_DEFAULTS = session_to_dict(SessionState("", 0, 0))


def session_from_dict(data: dict[str, Any]) -> SessionState:
    """Inverse of `session_to_dict`; also reads the dicts of older versions (a `person_id`,
    lists for `devices` and `rc_times`, keys missing for counters added since)."""

    def get(key: str) -> Any:
        return data.get(key, _DEFAULTS[key])

    s = SessionState(
        session_id=data["session_id"],
        started_ms=data["started_ms"],
        last_ms=data["last_ms"],
        events=get("events"),
        views=get("views"),
        channels=sum(CHANNEL_BITS[c] for c in set(get("channels"))),
        device_ids=_device_ids(tuple(get("devices"))),
        landing_page=get("landing_page"),
        landing_ms=get("landing_ms"),
        exit_page=get("exit_page"),
        exit_ms=get("exit_ms"),
        flags=sum(bit for key, bit in FLAGS.items() if get(key)),
        revenue=get("revenue"),
        friction_count=get("friction_count"),
        last_channel=get("last_channel"),
        last_device=get("last_device"),
        last_device_type=get("last_device_type"),
        cart_items=get("cart_items"),
        qb_prev_page=get("qb_prev_page"),
        qb_cur_page=get("qb_cur_page"),
        qb_cur_ms=get("qb_cur_ms"),
        qb_device=get("qb_device"),
        co_step=get("co_step"),
    )
    rare = RareCounters(
        rc_element=get("rc_element"),
        rc_device=get("rc_device"),
        rc_times=tuple(get("rc_times")),
        zero_searches=get("zero_searches"),
        pay_errors=get("pay_errors"),
        co_backs=get("co_backs"),
    )
    if rare != _NO_RARE:
        s.rare = rare
    return s
