"""One person's state and what one event does to it: sessions, checkout attempts, friction.

Intuition: a person has at most one open session. An event joins it when it falls within the
inactivity gap and under the length cap; otherwise the open session closes and a new one starts.
An event older than the open session can reach belongs to a session already closed: the short
list of recently closed sessions (`recent`, kept for the late horizon) tells which, and the event
is kept, attributed to it and flagged `late` without rewriting that session's summary.

Everything in `PersonState` is plain data (primitives, tuples, bytes, slotted dataclasses of
primitives): events waiting for the watermark are stored as `Waiting` tuples and become an
`Event` again only when applied. `streams.core.journey` decides *when* events are
applied; this module decides *what* they change.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

from schemas import Channel, Event, ms_to_datetime
from streams.core import checkout as co
from streams.core import dedup
from streams.core.config import JourneyConfig
from streams.core.friction import Details
from streams.core.identifiers import session_id_for, signal_id_for
from streams.core.identity import Duplicate, Routed
from streams.core.records import EventRow, FrictionSignal, SessionMerge, SessionSummary
from streams.core.session import (
    CHECKOUT_ACTIVITY,
    SessionState,
    device_type_of,
    is_engaged,
    open_session,
    record_event,
    summarise,
)

#: An event waiting for the watermark, as plain data (it was validated when decoded):
#: (ts_ms, event_id, event_type, channel, device_id, customer_id, properties, schema_version,
#:  watermark_ms, received_at_ms, source, position). Sorted by (ts_ms, event_id).
Waiting = tuple[int, str, str, str, str | None, str | None, dict[str, Any], int, int, int, str, int]


def to_waiting(msg: Routed) -> Waiting:
    ev = msg.event
    return (
        ev.ts_ms,
        ev.event_id,
        ev.event_type,
        ev.channel.value,
        ev.device_id,
        ev.customer_id,
        ev.properties,
        ev.schema_version,
        msg.watermark_ms,
        msg.received_at_ms,
        msg.source,
        msg.position,
    )


_CHANNELS = {c.value: c for c in Channel}
_EVENT_FIELDS = frozenset(Event.model_fields)
_new = object.__new__
_set = object.__setattr__


def from_waiting(w: Waiting, person_id: str) -> Routed:
    """The `Routed` a waiting tuple came from (no re-validation: it was valid when it arrived).

    What `Event.model_construct` does, without its per-field bookkeeping (2.5x faster, and
    this runs for nearly every event): the tuple holds every field, already validated.
    tests/core/test_waiting_events.py checks the result equals the validated event.
    """
    ts, event_id, event_type, channel, device, customer, props, version, wm, rcv, src, pos = w
    event = _new(Event)
    _set(
        event,
        "__dict__",
        {
            "event_id": event_id,
            "event_type": event_type,
            "occurred_at": ms_to_datetime(ts),
            "channel": _CHANNELS[channel],
            "device_id": device,
            "customer_id": customer,
            "properties": props,
            "schema_version": version,
            "ts_ms": ts,
        },
    )
    _set(event, "__pydantic_fields_set__", set(_EVENT_FIELDS))
    _set(event, "__pydantic_extra__", None)
    _set(event, "__pydantic_private__", None)
    return Routed(person_id, event, wm, rcv, src, pos)


def waiting_order(w: Waiting) -> tuple[int, str]:
    return w[0], w[1]


def with_waiting(pending: tuple[Waiting, ...], w: Waiting) -> tuple[Waiting, ...]:
    """`pending` with `w` inserted in (ts_ms, event_id) order."""
    at = bisect_right(pending, waiting_order(w), key=waiting_order)
    return (*pending[:at], w, *pending[at:])


@dataclass(slots=True)
class PersonState:
    """Everything kept for one person. Collections are immutable tuples (or bytes), replaced
    when they change: most persons are kept only for the horizons, with nearly all of them
    empty, and an empty tuple is shared while an empty list or dict costs 56-64 bytes each."""

    person_id: str
    session: SessionState | None = None
    #: Recently closed sessions (session_id, started_ms, ended_ms), newest last, for the late
    #: horizon: late events are attributed to the closest of them.
    recent: tuple[tuple[str, int, int], ...] = ()
    checkout: co.CheckoutAttempt | None = None
    #: Support contacts of the last day: (ts_ms, medium, channel).
    contacts: tuple[tuple[int, str, str], ...] = ()
    #: Dedup memory for events without a device (the identity step dedups the others):
    #: see `streams.core.dedup`.
    seen: bytes = dedup.EMPTY
    #: On-time events waiting for the watermark, in (ts_ms, event_id) order.
    pending: tuple[Waiting, ...] = ()
    #: Replay guard: (source, last position applied, newest event time from it). See `Routed`.
    sources: tuple[tuple[str, int, int], ...] = ()
    #: Handovers already applied, (from_person, at_ms): a re-delivered one is a no-op.
    handovers: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Handover:
    """An anonymous person's open session (and checkout attempt) joining `into_person`, with
    the events it still had waiting for the watermark (as plain `Waiting` tuples)."""

    into_person: str
    from_person: str
    session: SessionState | None
    checkout: co.CheckoutAttempt | None
    at_ms: int
    pending: tuple[Waiting, ...] = ()


Output = EventRow | SessionSummary | FrictionSignal | SessionMerge | Handover | Duplicate


def expired(s: SessionState, watermark_ms: int, config: JourneyConfig) -> bool:
    return (
        watermark_ms > s.last_ms + config.session_gap_ms
        or watermark_ms >= s.started_ms + config.session_cap_ms
    )


def _fits(s: SessionState, ts: int, config: JourneyConfig) -> bool:
    gap = config.session_gap_ms
    return s.started_ms - gap <= ts <= s.last_ms + gap and ts < s.started_ms + config.session_cap_ms


def apply_event(
    state: PersonState, msg: Routed, watermark: int, config: JourneyConfig, out: list[Output]
) -> None:
    """Apply one event whose turn has come (the watermark guarantees nothing earlier is due)."""
    ev = msg.event
    ts = ev.ts_ms
    # The event itself proves its own time has come: a purchase 61 min after the last checkout
    # step finds the attempt already abandoned, whatever the watermark says.
    expire_checkout(state, max(watermark, ts), config, out)
    s = state.session
    if s is not None and (
        expired(s, watermark, config) or (not _fits(s, ts, config) and ts > s.last_ms)
    ):
        close_session(state, config, out)
        s = None
    late = False
    if s is not None and _fits(s, ts, config):
        session_id = s.session_id
        _apply_to_session(state, s, ev, config, out)
    elif s is not None:  # older than the open session can reach: it belonged to a closed one
        late = True
        session_id = _closest_recent(state, ts, watermark, config) or s.session_id
    elif ts < watermark and (recent := _closest_recent(state, ts, watermark, config)) is not None:
        late = True
        session_id = recent
    else:
        s = open_session(session_id_for(ev.event_id, ts), ts)
        state.session = s
        session_id = s.session_id
        _apply_to_session(state, s, ev, config, out)
    out.append(_event_row(ev, state.person_id, session_id, late, msg.received_at_ms))


def _apply_to_session(
    state: PersonState, s: SessionState, ev: Event, config: JourneyConfig, out: list[Output]
) -> None:
    props, et, rules = ev.properties, ev.event_type, config.rules
    page = _page_of(ev)
    value = _number(props.get("value")) if et == "purchase" else None
    device = record_event(
        s,
        event_type=et,
        ts_ms=ev.ts_ms,
        channel=ev.channel.value,
        device_id=ev.device_id,
        device_type=device_type_of(ev),
        page=page,
        value=value,
    )
    fired: list[tuple[str, Details]] = []
    if page is not None and et in ("page_view", "screen_view"):
        d = rules.quick_back.on_view(s, page, ev.ts_ms, device)
        if d is not None:
            fired.append((rules.quick_back.type, d))
    for rule in (rules.payment_failure, rules.search_frustration, rules.rage_click):
        d = rule.on_event(s, ev)
        if d is not None:
            fired.append((rule.type, d))
    d = rules.checkout_loop.on_event(s, et)
    if d is not None:
        fired.append((rules.checkout_loop.type, d))
    d = rules.error_hit.on_event(ev)
    if d is not None:
        fired.append((rules.error_hit.type, d))
    if et == "support_contact":
        medium = str(props.get("medium", ""))
        state.contacts, d = rules.repeat_contact.on_contact(
            state.contacts, ev.ts_ms, medium, ev.channel.value
        )
        if d is not None:
            fired.append((rules.repeat_contact.type, d))
    if et in CHECKOUT_ACTIVITY:
        state.checkout = co.open_or_extend(
            state.checkout,
            event_type=et,
            ts_ms=ev.ts_ms,
            channel=ev.channel.value,
            device_id=device,
            device_type=device_type_of(ev),
            session_id=s.session_id,
        )
    elif et == "purchase" and state.checkout is not None:
        attempt, state.checkout = state.checkout, None
        if attempt.channel != ev.channel.value:
            fired.append(
                (
                    rules.checkout_abandoned.switch_type,
                    co.switch_details(attempt, ev.channel.value, ev.ts_ms),
                )
            )
    for signal_type, details in fired:
        s.friction_count += 1
        out.append(
            FrictionSignal(
                signal_id=signal_id_for(signal_type, state.person_id, ev.event_id, ev.ts_ms),
                type=signal_type,
                person_id=state.person_id,
                session_id=s.session_id,
                channel=ev.channel.value,
                device_id=ev.device_id,
                device_type=ev.device_type,
                occurred_at_ms=ev.ts_ms,
                details=details,
            )
        )


def _closest_recent(
    state: PersonState, ts: int, watermark: int, config: JourneyConfig
) -> str | None:
    """The closed session a late event at `ts` belongs to: within the gap of it, and closed no
    longer than the late horizon ago (pruning may lag a little; this check is exact)."""
    best: tuple[int, str] | None = None
    horizon = watermark - config.late_horizon_ms
    for session_id, started, ended in state.recent:
        if ended < horizon:
            continue
        distance = 0 if started <= ts <= ended else min(abs(ts - started), abs(ts - ended))
        if distance <= config.session_gap_ms and (best is None or distance < best[0]):
            best = (distance, session_id)
    return best[1] if best else None


def close_session(state: PersonState, config: JourneyConfig, out: list[Output]) -> None:
    s = state.session
    if s is None:
        return
    state.session = None
    rules = config.rules
    engaged = is_engaged(s, config.engaged_min_duration_ms, config.engaged_min_views)
    signals: list[FrictionSignal] = []
    for rule in (rules.bounce, rules.cart_abandoned, rules.payment_failure):
        details = rule.on_close(s, engaged)
        if details is not None:
            s.friction_count += 1
            signals.append(
                FrictionSignal(
                    signal_id=signal_id_for(rule.type, state.person_id, s.session_id, s.last_ms),
                    type=rule.type,
                    person_id=state.person_id,
                    session_id=s.session_id,
                    channel=s.last_channel,
                    device_id=s.last_device,
                    device_type=s.last_device_type,
                    occurred_at_ms=s.last_ms,
                    details=details,
                )
            )
    out.append(summarise(s, state.person_id, engaged))
    out.extend(signals)
    recent = (*state.recent, (s.session_id, s.started_ms, s.last_ms))
    state.recent = recent[-config.recent_sessions_kept :]


def expire_checkout(
    state: PersonState, watermark: int, config: JourneyConfig, out: list[Output]
) -> None:
    attempt, rule = state.checkout, config.rules.checkout_abandoned
    if attempt is None or not co.is_abandoned(attempt, watermark, rule.timeout_ms):
        return
    state.checkout = None
    if state.session is not None and state.session.session_id == attempt.session_id:
        state.session.friction_count += 1
    out.append(
        FrictionSignal(
            signal_id=signal_id_for(
                rule.type, state.person_id, attempt.session_id, attempt.last_ms
            ),
            type=rule.type,
            person_id=state.person_id,
            session_id=attempt.session_id,
            channel=attempt.channel,
            device_id=attempt.device_id,
            device_type=attempt.device_type,
            occurred_at_ms=attempt.last_ms,
            details=co.abandonment_details(attempt, rule.timeout_ms),
        )
    )


# --- rows ----------------------------------------------------------------------------------


def _page_of(ev: Event) -> str | None:
    page = ev.properties.get("screen" if ev.event_type == "screen_view" else "page")
    return page if isinstance(page, str) else None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _event_row(
    ev: Event, person_id: str, session_id: str, late: bool, received_at_ms: int
) -> EventRow:
    props = ev.properties
    item = props.get("item_id")
    currency = props.get("currency")
    return EventRow(
        event_id=ev.event_id,
        event_type=ev.event_type,
        occurred_at_ms=ev.ts_ms,
        received_at_ms=received_at_ms,
        channel=ev.channel.value,
        device_id=ev.device_id,
        device_type=ev.device_type,
        customer_id=ev.customer_id,
        person_id=person_id,
        session_id=session_id,
        page=_page_of(ev),
        item_id=item if isinstance(item, str) else None,
        value=_number(props.get("value")),
        currency=currency if isinstance(currency, str) else None,
        properties=props,
        late=late,
    )
