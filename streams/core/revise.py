"""Revisions: an event that arrives after its person's journey was decided rewrites it.

Intuition: the journey's conclusions (sessions, checkout attempts, friction) are a function of a
person's events in event-time order. Applied in that order, as on-time events are, the
function is computed once, incrementally. An event that arrives behind what was already decided
for its person (after its session closed, after an attempt was judged abandoned, or simply
before events already applied) would be applied out of order; instead, the person's journey is
computed again from a point before it, with the event in its place, and the difference is
written out: new versions of the sessions that changed, sessions that no longer exist
withdrawn, signals raised and withdrawn, events moved to another session.

So that a replay is possible, a person keeps, for the revision horizon
(`JourneyConfig.revision_horizon_ms`, 48 h of event time), the events applied (`history`) and a
few points to start from (`bases`: after each session that closed, with the checkout attempt
and support contacts held then). A replay starts from the latest base that the late event cannot
reach (its session ended more than the inactivity gap before the event), so the decisions before
it stand. Replaying the same history gives back exactly what was written before (the
outputs of applying events in order do not depend on when the watermark moved), which is how
the difference is found without keeping what was written.

A replay starts with the transaction memory (streams.core.transactions) its base kept, so a
re-sent purchase is judged as the run it replays judged it.

A login's hand-over (an anonymous visit joining the customer's, `streams.core.merges`) is an
input of the journey like an event: kept (`handed`, its session as it came) and taken over
again by a replay at its place in event time, the login's. A hand-over that arrives behind what
was decided (the app's events loaded after the web's) is itself put in its place by a replay.

Not revised (the late event is applied as before: kept, attributed to the closest session,
flagged `late`): an event older than the horizon or older than the person's oldest base.

This follows the retract-and-recompute model of incremental view maintenance (as in
Differential Dataflow or Flink's retract streams), at the grain of one person.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from copy import deepcopy
from dataclasses import dataclass, replace
from typing import Any

from streams.core import closed, dedup
from streams.core.checkout import CheckoutAttempt
from streams.core.config import JourneyConfig
from streams.core.identity import Duplicate
from streams.core.person import (
    Base,
    Handover,
    Output,
    PersonState,
    Waiting,
    apply_event,
    settle,
    waiting_order,
    with_waiting,
)
from streams.core.records import EventRow, FrictionSignal, SessionMerge, SessionSummary
from streams.core.session import PUBLISHED, is_engaged, summarise


@dataclass(frozen=True, slots=True)
class Retract:
    """`record`, written before, no longer holds: a newer row replaces it (`withdrawn`: or
    nothing does). Not stored: it tells the per-minute totals to take it back out."""

    record: EventRow | SessionSummary | FrictionSignal
    withdrawn: bool


def revision_kind(retract: Retract) -> str:
    """`<table>_revised` or `<table>_withdrawn`: what a revision did to a row (metrics)."""
    table = {EventRow: "event", SessionSummary: "session", FrictionSignal: "signal"}[
        type(retract.record)
    ]
    return f"{table}_{'withdrawn' if retract.withdrawn else 'revised'}"


def remember(state: PersonState, w: Waiting) -> None:
    """Keep an event just applied in order (it is the newest the person has)."""
    history = state.history
    if history is None:
        state.history = [w]
    elif not history or waiting_order(history[-1]) <= waiting_order(w):
        history.append(w)
    else:
        insort(history, w, key=waiting_order)


def start_over(state: PersonState) -> None:
    """Nothing before now can be replayed (an event applied out of order, a hand-over): forget
    the events and bases; the next session to close gives the next base."""
    if state.history is not None:
        state.history = []
    state.bases = ()
    state.handed = ()


def in_order(state: PersonState, w: Waiting) -> bool:
    """Whether applying `w` now is applying it in event-time order: nothing decided at or after
    its time, and no event applied after it."""
    if w[0] <= state.decided_ms:
        return False
    if state.handed and w[0] < state.handed[-1].at_ms:
        return False  # a hand-over taken at a later time (it comes before events at its time)
    history = state.history
    return not history or waiting_order(history[-1]) <= waiting_order(w)


def handover_in_order(state: PersonState, at_ms: int) -> bool:
    """Whether taking a hand-over over now is taking it at its place in event time: before the
    events at its own time, `at_ms`, the login's (the login event itself follows its notice)."""
    if state.history is None or at_ms <= state.decided_ms:
        return False
    if state.handed and at_ms < state.handed[-1].at_ms:
        return False
    history = state.history
    return not history or history[-1][0] < at_ms


def remember_handover(state: PersonState, msg: Handover) -> None:
    """Keep a hand-over about to be taken in order, as it came (taking it over changes its
    session): without its waiting events, which `history` keeps once they are applied."""
    state.handed = (*state.handed, _kept(msg))


def _kept(msg: Handover) -> Handover:
    return replace(msg, session=deepcopy(msg.session), checkout=deepcopy(msg.checkout), pending=())


#: Events are forgotten in steps of this much event time, not one by one: each step is a wake-up
#: of the person (a deadline), and one per event would cost more than the memory it saves.
FORGET_STEP_MS = 6 * 3_600_000


def forget_from(watermark_ms: int, config: JourneyConfig) -> int:
    """Events older than this are forgotten: a replay for an event within the horizon starts
    from a base at least the inactivity gap before it, so that much more is kept."""
    return watermark_ms - config.revision_horizon_ms - config.session_gap_ms


def forget_due(oldest_ms: int, config: JourneyConfig) -> int:
    """The watermark at which the events from `oldest_ms` on are next forgotten (a step)."""
    return oldest_ms + config.revision_horizon_ms + config.session_gap_ms + FORGET_STEP_MS + 1


def forget(state: PersonState, before_ms: int) -> None:
    """Forget the events older than `before_ms`, and the bases a replay could then no longer
    start from (one needs every event after it)."""
    history = state.history
    if state.handed and state.handed[0].at_ms < before_ms:
        # A replay from a base before a forgotten hand-over would miss it.
        gone = max(h.at_ms for h in state.handed if h.at_ms < before_ms)
        state.handed = tuple(h for h in state.handed if h.at_ms >= before_ms)
        state.bases = tuple(b for b in state.bases if b[0] >= gone)
    if not history:
        return
    cut = bisect_right(history, (before_ms - 1, "\U0010ffff"), key=waiting_order)
    if not cut:
        return
    newest_gone = history[cut - 1][0]
    del history[:cut]
    state.bases = tuple(b for b in state.bases if b[0] >= newest_gone)


def oldest(state: PersonState) -> int | None:
    """Event time of the oldest remembered event (for the deadline of `forget`)."""
    history = state.history
    first = int(history[0][0]) if history else None
    if state.handed and (first is None or state.handed[0].at_ms < first):
        return state.handed[0].at_ms
    return first


def _start(state: PersonState, ts: int, config: JourneyConfig) -> Base | None:
    """The latest base a replay including an event at `ts` may start from."""
    found = None
    for base in state.bases:
        if base[0] + config.session_gap_ms < ts:
            found = base
        else:
            break
    return found


def revise(
    state: PersonState, w: Waiting, watermark: int, config: JourneyConfig
) -> list[Output | Retract] | None:
    """Put the late event `w` in its place in the person's journey; None when it cannot be
    (see the module docstring), and the caller applies it as a late event."""
    ts = w[0]
    if state.history is None or ts < watermark - config.revision_horizon_ms:
        return None
    event_id = w[1]
    if any(h[1] == event_id for h in state.history):
        # Re-sent after the dedup horizon forgot it, but still among the events kept here.
        return [Duplicate(event_id, state.person_id)]
    return _revise(state, ts, w, None, config)


def revise_handover(
    state: PersonState, msg: Handover, watermark: int, config: JourneyConfig
) -> list[Output | Retract] | None:
    """Put a hand-over that arrived behind what was decided in its place (None: it cannot be,
    and the caller takes it over as it comes)."""
    if state.history is None or msg.at_ms < watermark - config.revision_horizon_ms:
        return None
    out = _revise(state, msg.at_ms, None, _kept(msg), config)
    if out is None:
        return None
    # What the anonymous person still had waiting is this person's now, as on time.
    for waiting in msg.pending:
        state.pending = with_waiting(state.pending, waiting)
    state.transactions = dedup.union(state.transactions, msg.transactions)
    return out


def _revise(
    state: PersonState,
    ts: int,
    w: Waiting | None,
    handover: Handover | None,
    config: JourneyConfig,
) -> list[Output | Retract] | None:
    """Replay the person's journey from the latest base before `ts` without and with the new
    input (`w` or `handover`), and write the difference.

    Both replays decide up to the watermark the person was last advanced to, as the live run
    did (which is what makes the replay without the new input give back what was written), and
    no further: a late file (the app's events of a day loaded after the web's) is behind the
    stage's watermark, but its visits are still going on in their own event time, and the
    watermark closes them when it next moves.
    """
    watermark = state.advanced_ms
    base = _start(state, ts, config)
    if base is None:
        return None
    history = state.history
    assert history is not None
    first = bisect_right(history, (base[0], "\U0010ffff"), key=waiting_order)
    before, after = history[:first], history[first:]
    handed = [h for h in state.handed if h.at_ms > base[0]]
    old_state, old_out = _replay(state, base, after, handed, watermark, config)
    if w is not None:
        insort(after, w, key=waiting_order)
    if handover is not None:
        insort(handed, handover, key=lambda h: h.at_ms)
        state.handed = tuple(h for h in state.handed if h.at_ms <= base[0]) + tuple(handed)
    new_state, new_out = _replay(state, base, after, handed, watermark, config)
    out = _difference(state, old_state, old_out, new_state, new_out, config)
    # The replay's journey from the base on, and what the person keeps whatever happened.
    state.session, state.checkout, state.contacts = (
        new_state.session,
        new_state.checkout,
        new_state.contacts,
    )
    kept_bases = tuple(b for b in state.bases if b[0] <= base[0])
    state.bases = kept_bases + tuple(b for b in new_state.bases if b[0] > base[0])
    state.history = before + after
    state.decided_ms = max(state.decided_ms, new_state.decided_ms)
    # Transactions the replay counted (the late event's purchase among them) stay remembered.
    state.transactions = dedup.union(state.transactions, new_state.transactions)
    recent = tuple(c for c in closed.entries(state.recent_packed) if c[2] <= base[0])
    recent += closed.entries(new_state.recent_packed)
    state.recent_packed = closed.pack(
        sorted(recent, key=lambda c: c[2])[-config.recent_sessions_kept :]
    )
    return out


def split_at(
    state: PersonState, at_ms: int, config: JourneyConfig
) -> tuple[list[Output | Retract], list[Waiting]] | None:
    """An anonymous person's journey as it was at a login `at_ms` that arrived late: what it
    concluded from its events after the login is taken back (they are the customer's, and are
    returned to be handed on), and the visit going on at the login's time is open again, to be
    handed over. None when no replay can reach that far back.
    """
    history = state.history
    if history is None:
        return None
    base = _start(state, at_ms + 1, config)
    if base is None:
        return None
    first = bisect_right(history, (base[0], "\U0010ffff"), key=waiting_order)
    before, after = history[:first], history[first:]
    keep = [w for w in after if w[0] <= at_ms]
    moved = [w for w in after if w[0] > at_ms]
    old_state, old_out = _replay(state, base, after, [], state.advanced_ms, config)
    new_state, new_out = _replay(state, base, keep, [], at_ms, config)
    out = [
        # A visit withdrawn here may be the customer's next, under the same id (the id comes
        # from its first event) and with the same events: a closed row of the same version,
        # written later, must win (ReplacingMergeTree keeps the last of equal versions).
        replace(r, version=2 * r.events + 1)
        if isinstance(r, SessionSummary) and r.is_deleted
        else r
        for r in _difference(state, old_state, old_out, new_state, new_out, config)
    ]
    # The moved events' rows are written again by the customer: out of the totals here.
    gone = {w[1] for w in moved}
    out.extend(
        Retract(r, withdrawn=False)
        for r in old_out
        if isinstance(r, EventRow) and r.event_id in gone
    )
    state.session, state.checkout, state.contacts = (
        new_state.session,
        new_state.checkout,
        new_state.contacts,
    )
    state.bases = tuple(b for b in state.bases if b[0] <= base[0]) + tuple(
        b for b in new_state.bases if b[0] > base[0]
    )
    state.history = before + keep
    state.decided_ms = new_state.decided_ms
    recent = tuple(c for c in closed.entries(state.recent_packed) if c[2] <= base[0])
    recent += closed.entries(new_state.recent_packed)
    state.recent_packed = closed.pack(
        sorted(recent, key=lambda c: c[2])[-config.recent_sessions_kept :]
    )
    return out, moved


def _replay(
    live: PersonState,
    base: Base,
    events: list[Waiting],
    handed: list[Handover],
    watermark: int,
    config: JourneyConfig,
) -> tuple[PersonState, list[Output]]:
    """The person's journey from `base`, `events` applied and `handed` taken over in order (a
    hand-over before the events at its own time), up to `watermark`."""
    from streams.core.journey import advance  # journey drives this module: imported late
    from streams.core.merges import take_over

    checkout = base[1]
    state = PersonState(
        live.person_id,
        checkout=None if checkout is None else _copy(checkout),
        contacts=base[2],
        history=[],
    )
    # The purchases remembered at the base, and the anonymous visits' ones from the start: a
    # copy of one, re-sent by the device before the login's time, counts once.
    state.transactions = base[3]
    for h in handed:
        state.transactions = dedup.union(state.transactions, h.transactions)
    out: list[Output] = []
    i = 0
    for w in events:
        while i < len(handed) and handed[i].at_ms <= w[0]:
            settle(state, handed[i].at_ms, config, out)
            out.extend(take_over(state, _kept(handed[i]), config))
            i += 1
        apply_event(state, w, w[0], config, out)
    for h in handed[i:]:
        settle(state, h.at_ms, config, out)
        out.extend(take_over(state, _kept(h), config))
    after, closing = advance(state, watermark, config)
    out.extend(closing)
    return (after or state), out


def _copy(attempt: CheckoutAttempt) -> CheckoutAttempt:
    return CheckoutAttempt(
        attempt.opened_ms,
        attempt.last_ms,
        attempt.channel,
        attempt.device_id,
        attempt.device_type,
        attempt.session_id,
        attempt.furthest_step,
    )


def _by_id(out: list[Output]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    events: dict[str, EventRow] = {}
    sessions: dict[str, SessionSummary] = {}
    signals: dict[str, FrictionSignal] = {}
    for r in out:
        if isinstance(r, EventRow):
            events[r.event_id] = r
        elif isinstance(r, SessionSummary):
            sessions[r.session_id] = r
        elif isinstance(r, FrictionSignal):
            signals[r.signal_id] = r
    return events, sessions, signals


def _difference(
    live: PersonState,
    old_state: PersonState,
    old_out: list[Output],
    new_state: PersonState,
    new_out: list[Output],
    config: JourneyConfig,
) -> list[Output | Retract]:
    """What to write so that storage shows the new journey instead of the old one."""
    old_events, old_sessions, old_signals = _by_id(old_out)
    new_events, new_sessions, new_signals = _by_id(new_out)
    out: list[Output | Retract] = []
    for event_id, row in new_events.items():
        before = old_events.get(event_id)
        if before != row:
            if before is not None:
                out.append(Retract(before, withdrawn=False))
            out.append(row)
    open_now = new_state.session
    shown_open = live.session is not None and bool(live.session.flags & PUBLISHED)
    shown_before = old_state.session
    if shown_open and shown_before is not None:
        # The visit shown open: what replaces it must outrank its open row too.
        engaged = is_engaged(shown_before, config.engaged_min_duration_ms, config.engaged_min_views)
        shown = summarise(shown_before, live.person_id, engaged, is_open=True)
        if new_sessions.get(shown.session_id, shown).version <= shown.version:
            row = new_sessions.get(shown.session_id)
            if row is not None and row.is_deleted:
                new_sessions[shown.session_id] = replace(row, version=shown.version + 1)
    for session_id, row in new_sessions.items():
        before = old_sessions.get(session_id)
        if before != row:
            if before is not None:
                out.append(Retract(before, withdrawn=False))
                if row.version <= before.version:
                    # What replaces a row must outrank it in storage, whatever the counts:
                    # a visit taken back from a hand-over has fewer events than it showed.
                    row = replace(row, version=before.version + 1)
            out.append(row)
    for session_id, before in old_sessions.items():
        if session_id in new_sessions:
            continue
        out.append(Retract(before, withdrawn=True))
        if open_now is not None and open_now.session_id == session_id:
            shown_open = True  # written closed, open again: its open row replaces that one
        else:
            out.append(_withdrawn_session(before))
    if shown_open:
        old_open = old_state.session
        if (
            old_open is not None
            and old_open.session_id not in new_sessions
            and (open_now is None or open_now.session_id != old_open.session_id)
        ):
            engaged = is_engaged(old_open, config.engaged_min_duration_ms, config.engaged_min_views)
            out.append(summarise(old_open, live.person_id, engaged, is_deleted=True))
        if open_now is not None:
            open_now.flags |= PUBLISHED
            engaged = is_engaged(open_now, config.engaged_min_duration_ms, config.engaged_min_views)
            out.append(summarise(open_now, live.person_id, engaged, is_open=True))
    for signal_id, signal in new_signals.items():
        before = old_signals.get(signal_id)
        if before != signal:
            if before is not None:
                out.append(Retract(before, withdrawn=False))
            out.append(signal)
    for signal_id, before in old_signals.items():
        if signal_id not in new_signals:
            out.append(Retract(before, withdrawn=True))
            out.append(_withdrawn_signal(before))
    # Sessions a hand-over put in its place now joins (a merge is never taken back: storage
    # re-attributes the absorbed session's rows, and its own row was withdrawn above).
    old_merges = {(r.session_id, r.merged_into) for r in old_out if isinstance(r, SessionMerge)}
    out.extend(
        r
        for r in new_out
        if isinstance(r, SessionMerge) and (r.session_id, r.merged_into) not in old_merges
    )
    return out


def _withdrawn_session(row: SessionSummary) -> SessionSummary:
    from dataclasses import replace

    return replace(row, is_deleted=True, is_open=False, version=2 * row.events + 2)


def _withdrawn_signal(signal: FrictionSignal) -> FrictionSignal:
    from dataclasses import replace

    return replace(signal, is_deleted=True, version=signal.version + 1)
