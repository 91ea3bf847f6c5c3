"""The per-person journey step: sessions, checkout attempts and friction signals.

Intuition: each person has at most one open session. An event joins it when it falls within
the inactivity gap of the session and under the length cap; otherwise the open session closes
and a new one starts. Sessions also close when the *watermark* (event time, never wall-clock)
moves past their last event by the gap, which is what makes a replay give the same answers.
The watermark trails the newest event time by a grace period, so an event up to that much out
of order still lands in the right session; one arriving after its session closed is kept,
attributed to the closest session, flagged `late`, and does not rewrite the closed summary.

Inputs (all keyed by person): `Routed` events, `LinkNotice` (this anonymous person's device got
linked: hand the open session over), and `Handover` (an anonymous session joining this
customer's). `advance` moves the watermark. Steps update the state they are given and return it
with their outputs; callers treat the state they passed in as consumed.
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass, field

from schemas import Event
from streams.core import checkout as co
from streams.core.config import JourneyConfig
from streams.core.friction import Details
from streams.core.identifiers import event_key, session_id_for, signal_id_for
from streams.core.identity import Duplicate, LinkNotice, Routed
from streams.core.records import EventRow, FrictionSignal, SessionMerge, SessionSummary
from streams.core.session import (
    CHECKOUT_ACTIVITY,
    SessionState,
    absorb,
    is_engaged,
    open_session,
    record_event,
    summarise,
)


@dataclass(slots=True)
class PersonState:
    person_id: str
    session: SessionState | None = None
    #: Recently closed sessions (session_id, started_ms, ended_ms), newest last; late events
    #: are attributed to the closest of them.
    recent: list[tuple[str, int, int]] = field(default_factory=list)
    checkout: co.CheckoutAttempt | None = None
    #: Support contacts of the last day: (ts_ms, medium, channel).
    contacts: list[tuple[int, str, str]] = field(default_factory=list)
    #: Dedup memory for events without a device (the identity step dedups the others):
    #: stable 64-bit key of each recent event id -> its event time.
    seen: dict[int, int] = field(default_factory=dict)
    #: On-time events waiting for the watermark, in event-time order: (ts_ms, event_id, input).
    pending: list[tuple[int, str, Routed]] = field(default_factory=list)
    #: Replay guard: source -> (last position applied, newest event time from it). See `Routed`.
    sources: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: Handovers already applied, (from_person, at_ms): a re-delivered one is a no-op.
    handovers: list[tuple[str, int]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Handover:
    """An anonymous person's open session (and checkout attempt) joining `into_person`."""

    into_person: str
    from_person: str
    session: SessionState | None
    checkout: co.CheckoutAttempt | None
    at_ms: int
    pending: tuple[Routed, ...] = ()


Output = EventRow | SessionSummary | FrictionSignal | SessionMerge | Handover | Duplicate
JourneyInput = Routed | LinkNotice | Handover


def journey_step(
    state: PersonState | None, msg: JourneyInput, config: JourneyConfig
) -> tuple[PersonState | None, list[Output]]:
    """Apply one input to one person's state."""
    if isinstance(msg, Routed):
        state = state or PersonState(msg.person_id)
        if msg.source and msg.position >= 0:
            last = state.sources.get(msg.source)
            if last is not None and last[0] >= msg.position:
                return state, [Duplicate(msg.event.event_id, state.person_id)]
            newest = msg.event.ts_ms if last is None else max(last[1], msg.event.ts_ms)
            state.sources[msg.source] = (msg.position, newest)
        return _on_event(state, msg, config)
    if isinstance(msg, LinkNotice):
        return _on_link(state, msg, config)
    return _on_handover(state or PersonState(msg.into_person), msg, config)


def advance(
    state: PersonState, watermark_ms: int, config: JourneyConfig
) -> tuple[PersonState | None, list[Output]]:
    """Close what the watermark has passed; return None when nothing is left worth keeping."""
    out: list[Output] = []
    _release(state, watermark_ms, config, out)
    s = state.session
    if s is not None and _expired(s, watermark_ms, config):
        _close_session(state, config, out)
    _expire_checkout(state, watermark_ms, config, out)
    horizon = watermark_ms - config.dedup_horizon_ms
    if state.seen and min(state.seen.values()) < horizon:
        state.seen = {k: t for k, t in state.seen.items() if t >= horizon}
    state.recent = [r for r in state.recent if r[2] >= horizon]
    if state.sources and min(t for _, t in state.sources.values()) < horizon:
        state.sources = {k: v for k, v in state.sources.items() if v[1] >= horizon}
    state.handovers = [h for h in state.handovers if h[1] >= horizon]
    window = config.rules.repeat_contact.window_ms
    state.contacts = [c for c in state.contacts if c[0] >= watermark_ms - window]
    if not (
        state.session
        or state.checkout
        or state.seen
        or state.contacts
        or state.recent
        or state.pending
        or state.sources
        or state.handovers
    ):
        return None, out
    return state, out


def next_deadline(state: PersonState, config: JourneyConfig) -> int | None:
    """The smallest watermark at which `advance` would change something (None: nothing pending)."""
    candidates: list[int] = []
    if state.pending:
        candidates.append(state.pending[0][0])
    if state.session is not None:
        s = state.session
        candidates.append(
            min(s.last_ms + config.session_gap_ms + 1, s.started_ms + config.session_cap_ms)
        )
    if state.checkout is not None:
        candidates.append(state.checkout.last_ms + config.rules.checkout_abandoned.timeout_ms + 1)
    if state.seen or state.recent or state.sources or state.handovers:
        oldest = min(
            [
                *state.seen.values(),
                *(r[2] for r in state.recent),
                *(t for _, t in state.sources.values()),
                *(h[1] for h in state.handovers),
            ]
        )
        candidates.append(oldest + config.dedup_horizon_ms + 1)
    if state.contacts:
        oldest_contact = min(c[0] for c in state.contacts)
        candidates.append(oldest_contact + config.rules.repeat_contact.window_ms + 1)
    return min(candidates) if candidates else None


# --- events -------------------------------------------------------------------------------


def _expired(s: SessionState, watermark_ms: int, config: JourneyConfig) -> bool:
    return (
        watermark_ms > s.last_ms + config.session_gap_ms
        or watermark_ms >= s.started_ms + config.session_cap_ms
    )


def _fits(s: SessionState, ts: int, config: JourneyConfig) -> bool:
    gap = config.session_gap_ms
    return s.started_ms - gap <= ts <= s.last_ms + gap and ts < s.started_ms + config.session_cap_ms


def _on_event(
    state: PersonState, msg: Routed, config: JourneyConfig
) -> tuple[PersonState, list[Output]]:
    """Hold an on-time event until the watermark passes it; apply a behind-the-watermark one now.

    Intuition: within the grace period, arrival order means nothing (a person's devices reach
    us through different partitions), so on-time events wait in `pending` and are applied in
    event-time order once the watermark guarantees nothing earlier can still come. An event
    already behind the watermark cannot be reordered any more: it is applied at once, and is
    late if its session has closed.
    """
    ev = msg.event
    out: list[Output] = []
    ts = ev.ts_ms
    if ev.device_id is None:
        key = event_key(ev.event_id)
        if key in state.seen:
            return state, [Duplicate(ev.event_id, state.person_id)]
        state.seen[key] = ts
    # The stage's watermark only: a person's own newest event says nothing about their other
    # devices, whose events may travel through partitions that are behind.
    watermark = msg.watermark_ms
    if ts > watermark:
        insort(state.pending, (ts, ev.event_id, msg))
        _release(state, watermark, config, out)
        return state, out
    _release(state, watermark, config, out)
    _apply_event(state, msg, watermark, config, out)
    return state, out


def _release(state: PersonState, watermark: int, config: JourneyConfig, out: list[Output]) -> None:
    """Apply, in event-time order, every pending event the watermark has passed."""
    while state.pending and state.pending[0][0] <= watermark:
        ts, _, msg = state.pending.pop(0)
        # Applied in order, an event is judged at its own time: nothing after it is known yet.
        _apply_event(state, msg, ts, config, out)


def _apply_event(
    state: PersonState, msg: Routed, watermark: int, config: JourneyConfig, out: list[Output]
) -> None:
    ev = msg.event
    ts = ev.ts_ms
    # The event itself proves its own time has come: a purchase 61 min after the last checkout
    # step finds the attempt already abandoned, whatever the watermark says.
    _expire_checkout(state, max(watermark, ts), config, out)
    s = state.session
    if s is not None and (
        _expired(s, watermark, config) or (not _fits(s, ts, config) and ts > s.last_ms)
    ):
        _close_session(state, config, out)
        s = None
    late = False
    if s is not None and _fits(s, ts, config):
        session_id = s.session_id
        _apply_to_session(state, s, ev, config, out)
    elif s is not None:  # older than the open session can reach: it belonged to a closed one
        late = True
        session_id = _closest_recent(state, ts, config) or s.session_id
    elif ts < watermark and (recent := _closest_recent(state, ts, config)) is not None:
        late = True
        session_id = recent
    else:
        s = open_session(session_id_for(ev.event_id, ts), state.person_id, ts)
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
    record_event(
        s,
        event_type=et,
        ts_ms=ev.ts_ms,
        channel=ev.channel.value,
        device_id=ev.device_id,
        device_type=ev.device_type,
        page=page,
        value=value,
    )
    fired: list[tuple[str, Details]] = []
    if page is not None and et in ("page_view", "screen_view"):
        d = rules.quick_back.on_view(s, page, ev.ts_ms, ev.device_id)
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
        d = rules.repeat_contact.on_contact(state.contacts, ev.ts_ms, medium, ev.channel.value)
        if d is not None:
            fired.append((rules.repeat_contact.type, d))
    if et in CHECKOUT_ACTIVITY:
        state.checkout = co.open_or_extend(
            state.checkout,
            event_type=et,
            ts_ms=ev.ts_ms,
            channel=ev.channel.value,
            device_id=ev.device_id,
            device_type=ev.device_type,
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


def _closest_recent(state: PersonState, ts: int, config: JourneyConfig) -> str | None:
    best: tuple[int, str] | None = None
    for session_id, started, ended in state.recent:
        distance = 0 if started <= ts <= ended else min(abs(ts - started), abs(ts - ended))
        if distance <= config.session_gap_ms and (best is None or distance < best[0]):
            best = (distance, session_id)
    return best[1] if best else None


def _close_session(state: PersonState, config: JourneyConfig, out: list[Output]) -> None:
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
    out.append(summarise(s, engaged))
    out.extend(signals)
    state.recent.append((s.session_id, s.started_ms, s.last_ms))
    del state.recent[: -config.recent_sessions_kept]


def _expire_checkout(
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


# --- identity merges -----------------------------------------------------------------------


def _on_link(
    state: PersonState | None, msg: LinkNotice, config: JourneyConfig
) -> tuple[PersonState | None, list[Output]]:
    """This anonymous person's device was linked: hand over at once what is still open.

    At once, not in event-time order: the customer's side can only merge what reaches it before
    its own session closes, and the notice travels right behind the anonymous events, through
    the same partition. Waiting events go along and are applied by the customer, in order.
    """
    if state is None:
        return None, []
    out: list[Output] = []
    _apply_link(state, msg, out)
    return state, out


def _apply_link(state: PersonState, msg: LinkNotice, out: list[Output]) -> None:
    """Hand over what is still open: the session, the checkout attempt, waiting events."""
    out.append(
        Handover(
            into_person=msg.customer_id,
            from_person=state.person_id,
            session=state.session,
            checkout=state.checkout,
            at_ms=msg.linked_at_ms,
            pending=tuple(m for _, _, m in state.pending),
        )
    )
    state.session, state.checkout, state.pending = None, None, []


def _on_handover(
    state: PersonState, msg: Handover, config: JourneyConfig
) -> tuple[PersonState, list[Output]]:
    mark = (msg.from_person, msg.at_ms)
    if mark in state.handovers:  # delivered again (a replay): applied once already
        return state, []
    state.handovers.append(mark)
    out: list[Output] = []
    for routed in msg.pending:  # the anonymous person's waiting events are this person's now
        moved = Routed(
            state.person_id,
            routed.event,
            routed.watermark_ms,
            routed.received_at_ms,
            routed.source,
            routed.position,
        )
        entry: tuple[int, str, Routed] = (
            moved.event.ts_ms,
            moved.event.event_id,
            moved,
        )
        insort(state.pending, entry)
    state.checkout = co.combine(state.checkout, msg.checkout)
    incoming = msg.session
    if incoming is None:
        return state, out
    incoming.person_id = state.person_id
    s = state.session
    if s is None:
        state.session = incoming
    elif (
        incoming.last_ms + config.session_gap_ms >= s.started_ms
        and s.last_ms + config.session_gap_ms >= incoming.started_ms
    ):
        # One visit seen under two identities: the session that started first survives, so
        # the surviving id does not depend on which message arrived first.
        ordered = sorted((s, incoming), key=lambda x: (x.started_ms, x.session_id))
        survivor, absorbed = ordered[0], ordered[1]
        absorb(survivor, absorbed)
        state.session = survivor
        if state.checkout is not None and state.checkout.session_id == absorbed.session_id:
            state.checkout.session_id = survivor.session_id
        out.append(
            SessionMerge(absorbed.session_id, survivor.session_id, state.person_id, msg.at_ms)
        )
    else:
        # Two different visits: the earlier one is over, the later one stays open.
        earlier, later = (s, incoming) if s.last_ms <= incoming.last_ms else (incoming, s)
        state.session = earlier
        _close_session(state, config, out)
        state.session = later
    return state, out


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
