"""One person's state and what one event does to it: sessions, checkout attempts, friction.

Intuition: a person has at most one open session. An event joins it when it falls within the
inactivity gap and under the length cap; otherwise the open session closes and a new one starts.
An event older than the open session can reach belongs to a session already closed: the short
list of recently closed sessions (`recent`, kept for the late horizon) tells which, and the event
is kept, attributed to it and flagged `late` without rewriting that session's summary.

Everything in `PersonState` is plain data (primitives, tuples, bytes, slotted dataclasses of
primitives): events waiting for the watermark are stored as `Waiting` tuples, and applied
straight from them (no `Event` is rebuilt). `streams.core.journey` decides *when* events are
applied; this module decides *what* they change.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from streams.core import checkout as co
from streams.core import closed, dedup, transactions
from streams.core.config import JourneyConfig
from streams.core.friction import EVENT_RULE_TYPES, Details
from streams.core.identifiers import session_id_for, signal_id_for
from streams.core.identity import Duplicate, Routed
from streams.core.records import EventRow, FrictionSignal, SessionMerge, SessionSummary
from streams.core.session import (
    CHECKOUT_ACTIVITY,
    CHECKOUT_STEPS,
    SessionState,
    is_engaged,
    open_session,
    record_event,
    summarise,
)
from streams.core.waiting import CHANNEL_VALUE as CHANNEL_VALUE
from streams.core.waiting import W_RECEIVED as W_RECEIVED
from streams.core.waiting import Waiting as Waiting
from streams.core.waiting import event_of as event_of
from streams.core.waiting import from_waiting as from_waiting
from streams.core.waiting import properties_of as properties_of
from streams.core.waiting import to_waiting as to_waiting
from streams.core.waiting import waiting_order as waiting_order
from streams.core.waiting import with_waiting as with_waiting

#: Where a replay may start: (end of the session closed there, the checkout attempt open then,
#: the support contacts kept then, the purchases' transactions remembered then, so a replay
#: judges copies exactly as the run it replays did). `NEW_PERSON` starts from nothing: the
#: person's whole history is still there.
Base = tuple[int, co.CheckoutAttempt | None, tuple[tuple[int, str, str], ...], bytes]
NEW_PERSON: Base = (-(2**62), None, (), dedup.EMPTY)


@dataclass(slots=True)
class PersonState:
    """Everything kept for one person. Collections are immutable tuples (or bytes), replaced
    when they change: most persons are kept only for the horizons, with nearly all of them
    empty, and an empty tuple is shared while an empty list or dict costs 56-64 bytes each."""

    person_id: str
    session: SessionState | None = None
    #: Recently closed sessions (session_id, started_ms, ended_ms), sorted by end, for the late
    #: horizon: late events are attributed to the closest of them. Sorted, the first one is
    #: the next to forget. Packed in bytes (`streams.core.closed`); read them as `recent`.
    recent_packed: bytes = closed.EMPTY
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
    #: Transaction ids of the purchases counted within the dedup horizon, as `dedup` records:
    #: a purchase re-sent under a new event id counts once (`streams.core.transactions`).
    transactions: bytes = dedup.EMPTY
    #: Revisions (`streams.core.revise`): the events applied within the revision horizon, in
    #: (ts_ms, event_id) order, as `Waiting` tuples (None: none yet) ...
    history: list[Waiting] | None = None
    #: ... the points a replay may start from (one per session closed: its end, the checkout
    #: attempt and support contacts held then), oldest first ...
    bases: tuple[Base, ...] = ()
    #: ... and the latest event time a decision (a session closed, an attempt abandoned) was
    #: taken for: an event behind the watermark but after it (and after the last one applied)
    #: is simply applied in order; one before it makes the person's journey be replayed.
    decided_ms: int = 0
    #: Hand-overs taken within the revision horizon (their session as it came, without the
    #: waiting events, which are in `history` once applied): a replay takes them over again at
    #: their place in event time, so a login does not stop revisions (`streams.core.revise`).
    handed: tuple[Handover, ...] = ()
    #: The latest watermark this person was advanced to: a revision replays up to at least it.
    advanced_ms: int = 0

    @property
    def recent(self) -> tuple[closed.Closed, ...]:
        return closed.entries(self.recent_packed)


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
    #: The anonymous person's transaction memory: the customer remembers those purchases too.
    transactions: bytes = dedup.EMPTY
    #: The anonymous person's support contacts of the last day: a customer who phoned before
    #: logging in and then chats has contacted support twice, whichever arrived first.
    contacts: tuple[tuple[int, str, str], ...] = ()
    #: The watermark when the link was made: a hand-over that arrives behind what the customer
    #: has decided is put in its place by a replay up to (at least) this watermark.
    watermark_ms: int = 0


#: A `Routed` among a step's outputs is an event handed on to another person (a device's events
#: after a login that arrived late belong to the customer: `journey._on_link`).
Output = EventRow | SessionSummary | FrictionSignal | SessionMerge | Handover | Duplicate | Routed


def expired(s: SessionState, watermark_ms: int, config: JourneyConfig) -> bool:
    return (
        watermark_ms > s.last_ms + config.session_gap_ms
        or watermark_ms >= s.started_ms + config.session_cap_ms
    )


def _fits(s: SessionState, ts: int, config: JourneyConfig) -> bool:
    gap = config.session_gap_ms
    return s.started_ms - gap <= ts <= s.last_ms + gap and ts < s.started_ms + config.session_cap_ms


def apply_event(
    state: PersonState,
    w: Waiting,
    watermark: int,
    config: JourneyConfig,
    out: list[Output],
) -> None:
    """Apply one event whose turn has come (the watermark guarantees nothing earlier is due).

    The event is read straight from its `Waiting` tuple (no `Event` is rebuilt: that would cost
    a datetime and a pydantic object per event for fields the journey never reads)."""
    ts = w[0]
    # The event itself proves its own time has come: a purchase 61 min after the last checkout
    # step finds the attempt already abandoned, whatever the watermark says.
    if state.session is not None or state.checkout is not None:
        settle(state, watermark if watermark > ts else ts, config, out)
    s = state.session
    # What several steps read, read once (the tuple already holds shared strings).
    event_type, channel, props = w[2], w[3], properties_of(w)
    page = props.get("screen" if event_type == "screen_view" else "page")
    if type(page) is not str:
        page = None
    device_type = props.get("device_type")
    if type(device_type) is not str:
        device_type = None
    copy = False
    if event_type == "purchase":
        copy, state.transactions = transactions.check_purchase(
            state.transactions, props, ts, watermark, config
        )
    late = False
    if s is not None and _fits(s, ts, config):
        session_id = s.session_id
        _apply_to_session(state, s, w, props, page, device_type, config, out, copy)
    elif s is not None:  # older than the open session can reach: it belonged to a closed one
        late = True
        session_id = _closest_recent(state, ts, watermark, config) or s.session_id
    elif ts < watermark and (recent := _closest_recent(state, ts, watermark, config)) is not None:
        late = True
        session_id = recent
    elif copy:  # opens no session: it would be a one-event visit that never happened
        session_id = ""
    else:
        s = open_session(session_id_for(w[1], ts), ts)
        state.session = s
        session_id = s.session_id
        _apply_to_session(state, s, w, props, page, device_type, config, out)
    item, currency = props.get("item_id"), props.get("currency")
    out.append(
        EventRow(
            event_id=w[1],
            event_type=event_type,
            occurred_at_ms=ts,
            received_at_ms=w[W_RECEIVED],
            channel=channel,
            device_id=w[4],
            device_type=device_type,
            customer_id=w[5],
            person_id=state.person_id,
            session_id=session_id,
            page=page,
            item_id=item if type(item) is str else None,
            value=_number(props.get("value")),
            currency=currency if type(currency) is str else None,
            properties=props,
            late=late,
            duplicate_transaction=copy,
        )
    )


def _apply_to_session(
    state: PersonState,
    s: SessionState,
    w: Waiting,
    props: dict[str, Any],
    page: str | None,
    device_type: str | None,
    config: JourneyConfig,
    out: list[Output],
    copy: bool = False,
) -> None:
    """Fold the event `w` into the open session `s` and run the session's rules on it. A `copy`
    (a purchase whose transaction was counted already) is an event of the session, and nothing
    more: no revenue or conversion, no checkout attempt closed, no rule answered."""
    ts, et, channel, rules = w[0], w[2], w[3], config.rules
    if copy:
        et = transactions.COPY
    value = _number(props.get("value")) if et == "purchase" else None
    device = record_event(
        s,
        event_type=et,
        ts_ms=ts,
        channel=channel,
        device_id=w[4],
        device_type=device_type,
        page=page,
        value=value,
    )
    if copy:
        return
    fired: list[tuple[str, Details]] = []
    if page is not None and (et == "page_view" or et == "screen_view"):
        d = rules.quick_back.on_view(s, page, ts, device)
        if d is not None:
            fired.append((rules.quick_back.type, d))
    if et in EVENT_RULE_TYPES:  # most events: none of the per-event rules reacts
        d = rules.payment_failure.on_event(s, et, props)
        if d is not None:
            fired.append((rules.payment_failure.type, d))
        d = rules.search_frustration.on_event(s, et, props)
        if d is not None:
            fired.append((rules.search_frustration.type, d))
        d = rules.rage_click.on_event(s, et, props, w[4], ts)
        if d is not None:
            fired.append((rules.rage_click.type, d))
    if et in CHECKOUT_STEPS:
        d = rules.checkout_loop.on_event(s, et)
        if d is not None:
            fired.append((rules.checkout_loop.type, d))
    if et == "exception":
        d = rules.error_hit.on_event(et, props)
        if d is not None:
            fired.append((rules.error_hit.type, d))
    if et == "support_contact":
        medium = str(props.get("medium", ""))
        state.contacts, d = rules.repeat_contact.on_contact(state.contacts, ts, medium, channel)
        if d is not None:
            fired.append((rules.repeat_contact.type, d))
    if et in CHECKOUT_ACTIVITY:
        state.checkout = co.open_or_extend(
            state.checkout,
            event_type=et,
            ts_ms=ts,
            channel=channel,
            device_id=device,
            device_type=device_type,
            session_id=s.session_id,
        )
    elif et == "purchase" and state.checkout is not None:
        attempt, state.checkout = state.checkout, None
        if attempt.channel != channel:
            fired.append(
                (
                    rules.checkout_abandoned.switch_type,
                    co.switch_details(attempt, channel, ts),
                )
            )
    if not fired:
        return
    event_id = w[1]
    for signal_type, details in fired:
        s.friction_count += 1
        out.append(
            FrictionSignal(
                signal_id=signal_id_for(signal_type, state.person_id, event_id, ts),
                type=signal_type,
                person_id=state.person_id,
                session_id=s.session_id,
                channel=channel,
                device_id=w[4],
                device_type=device_type,
                occurred_at_ms=ts,
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
    for session_id, started, ended in closed.entries(state.recent_packed):
        if ended < horizon:
            continue
        distance = 0 if started <= ts <= ended else min(abs(ts - started), abs(ts - ended))
        if distance <= config.session_gap_ms and (best is None or distance < best[0]):
            best = (distance, session_id)
    return best[1] if best else None


def close_session(
    state: PersonState, config: JourneyConfig, out: list[Output], *, base: bool = True
) -> None:
    """Close the open session: its summary and closing signals, and (with `base`) a point a
    replay may start from, right after it."""
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
    ended = (s.session_id, s.started_ms, s.last_ms)
    state.recent_packed = closed.add(state.recent_packed, ended, config.recent_sessions_kept)
    # Decided: nothing at or before the gap's end (or the cap) may change this any more without
    # a replay; and a replay may start right after this session.
    cap_end = s.started_ms + config.session_cap_ms
    state.decided_ms = max(state.decided_ms, min(s.last_ms + config.session_gap_ms, cap_end))
    if base and state.history is not None:
        checkout = None if state.checkout is None else replace(state.checkout)
        state.bases = (*state.bases, (s.last_ms, checkout, state.contacts, state.transactions))


def settle(state: PersonState, now_ms: int, config: JourneyConfig, out: list[Output]) -> None:
    """Close the session and abandon the checkout attempt that `now_ms` has passed, in the
    order of their deadlines (the session first on a tie).

    The order matters: an attempt abandoned while its session is still open counts in that
    session's friction. Deciding it by deadline, not by when the watermark happened to move,
    gives the same answer however the input was cut or delayed (streams.core.revise relies on
    it: a replay applies events one after another, with no watermark in between)."""
    s, attempt = state.session, state.checkout
    if attempt is not None and s is not None:
        timeout = config.rules.checkout_abandoned.timeout_ms
        session_due = min(
            s.last_ms + config.session_gap_ms + 1, s.started_ms + config.session_cap_ms
        )
        if attempt.last_ms + timeout + 1 < session_due:
            expire_checkout(state, now_ms, config, out)
    s = state.session
    if s is not None and expired(s, now_ms, config):
        close_session(state, config, out)
    if state.checkout is not None:
        expire_checkout(state, now_ms, config, out)


def expire_checkout(
    state: PersonState, watermark: int, config: JourneyConfig, out: list[Output]
) -> None:
    attempt, rule = state.checkout, config.rules.checkout_abandoned
    if attempt is None or not co.is_abandoned(attempt, watermark, rule.timeout_ms):
        return
    state.checkout = None
    state.decided_ms = max(state.decided_ms, attempt.last_ms + rule.timeout_ms)
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


# --- reading events --------------------------------------------------------------------


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
