"""The per-person journey step: when inputs are applied, and what the watermark closes.

Intuition: a person's devices reach us through different partitions, so within the grace period
arrival order means nothing. On-time events wait in the person's `pending` list and are applied
in event-time order once the watermark (event time, never wall-clock) guarantees nothing
earlier can still come; an event already behind the watermark is applied at once, and is late
if its session has closed. Sessions close when the watermark moves past their last event by the
gap, checkout attempts when it passes their timeout, which is what makes a replay give the same
answers. What one event changes is `streams.core.person`; identity merges are
`streams.core.merges`.

Inputs (all keyed by person): `Routed` events, `LinkNotice` (this anonymous person's device got
linked: hand the open session over), and `Handover` (an anonymous session joining this
customer's). `advance` moves the watermark. Steps update the state they are given and return it
with their outputs; callers treat the state they passed in as consumed.

Replays (a consumer re-reading old offsets) are caught twice: by event id (the dedup horizon)
and by position (`Routed.source`/`position`: an input at or below the last position applied
from its source is a `Duplicate`).
"""

from __future__ import annotations

from dataclasses import replace

from streams.core import closed, dedup, revise, transactions
from streams.core.config import JourneyConfig
from streams.core.identifiers import event_key
from streams.core.identity import Duplicate, LinkNotice, Routed
from streams.core.merges import already_taken, on_link, take_over
from streams.core.person import (
    NEW_PERSON,
    Handover,
    Output,
    PersonState,
    Waiting,
    apply_event,
    from_waiting,
    settle,
    to_waiting,
    waiting_order,
    with_waiting,
)

__all__ = [
    "Handover",
    "JourneyInput",
    "Output",
    "PersonState",
    "advance",
    "journey_step",
    "next_deadline",
    "release_waiting",
]

JourneyInput = Routed | LinkNotice | Handover


def journey_step(
    state: PersonState | None, msg: JourneyInput, config: JourneyConfig
) -> tuple[PersonState | None, list[Output]]:
    """Apply one input to one person's state."""
    if isinstance(msg, Routed):
        # A new person: everything they do is remembered, so a replay may start from nothing.
        state = state or PersonState(msg.person_id, history=[], bases=(NEW_PERSON,))
        if msg.source and msg.position >= 0:
            guard = _guard(state, msg)
            if guard is None:
                return state, [Duplicate(msg.event.event_id, state.person_id)]
            state.sources = guard
        return _on_event(state, msg, config)
    if isinstance(msg, LinkNotice):
        return _on_link(state, msg, config)
    return _on_handover(state, msg, config)


def _guard(state: PersonState, msg: Routed) -> tuple[tuple[str, int, int], ...] | None:
    """The replay guard after `msg`, or None when its position was applied already."""
    ts = msg.event.ts_ms
    for i, (source, position, newest) in enumerate(state.sources):
        if source == msg.source:
            if position >= msg.position:
                return None
            entry = (source, msg.position, max(newest, ts))
            return (*state.sources[:i], entry, *state.sources[i + 1 :])
    return (*state.sources, (msg.source, msg.position, ts))


def _on_link(
    state: PersonState | None, msg: LinkNotice, config: JourneyConfig
) -> tuple[PersonState | None, list[Output]]:
    """First close what event time had closed at the login, then hand over the rest.

    A visit that ended more than the inactivity gap before the login is over and stays the
    anonymous person's own (queries re-attribute it via the identity link); one still going on
    at the login's time goes over, with its events up to the login. The login's own time
    decides, not the stage's watermark: a stage whose watermark lags (a replay, a busy
    partition) would otherwise hand an old, finished visit over and merge it into the
    customer's, and one whose watermark is ahead (the app's file loaded after the web's) would
    close the visit the login is part of.
    """
    out: list[Output] = []
    at = msg.linked_at_ms
    moved: list[Waiting] = []
    if state is not None:
        state, out = advance(state, min(msg.watermark_ms, at), config)
    if state is not None:
        if state.pending:
            # Its events up to the login are the visit's own: they go over inside the session.
            _release(state, at, config, out)
        history = state.history
        if history and (history[-1][0] > at or state.decided_ms >= at):
            # The login arrived after what this device did next: as of the login, that is the
            # customer's, and the visit then going on goes over (`revise.split_at`).
            split = revise.split_at(state, at, config)
            if split is not None:
                out.extend(split[0])  # type: ignore[arg-type]
                moved = split[1]
        settle(state, at, config, out)
    state, handed = on_link(state, msg)
    # Handed on after the hand-over, as the customer's own events (no replay guard: they were
    # applied once already, under the anonymous person).
    rerouted: list[Output] = [
        replace(
            from_waiting(w, msg.customer_id), watermark_ms=msg.watermark_ms, source="", position=-1
        )
        for w in moved
    ]
    return state, out + handed + rerouted


def _on_handover(
    state: PersonState | None, msg: Handover, config: JourneyConfig
) -> tuple[PersonState | None, list[Output]]:
    """Take an anonymous person's open visit over at its place in event time: the login's.

    In order (nothing decided at or after the login, no event of the customer's at or after it
    applied), the customer first applies its own events before the login and closes what the
    login's time closes, then takes over. That is exactly what a replay does with the hand-over
    in its history, so a late event after it can still be put in its place. Behind what was
    decided, the hand-over itself is put in its place by a revision, as a late event is.
    """
    # A new person: the hand-over is all there is, so a replay may start from nothing.
    state = state or PersonState(msg.into_person, history=[], bases=(NEW_PERSON,))
    if already_taken(state, msg):
        return state, []
    out: list[Output] = []
    at = msg.at_ms
    if revise.handover_in_order(state, at):
        if state.pending and state.pending[0][0] < at:
            _release(state, at - 1, config, out)
        settle(state, at, config, out)
        revise.remember_handover(state, msg)
        out.extend(take_over(state, msg, config))
        return state, out
    settle(state, state.advanced_ms, config, out)  # decided, as for a late event
    revised = revise.revise_handover(state, msg, max(msg.watermark_ms, at), config)
    if revised is not None:
        out.extend(revised)  # type: ignore[arg-type]
    else:  # beyond what a replay can reach: taken over as it comes
        out.extend(take_over(state, msg, config))
        # Taken out of order, it is in no replay's history: no replay may start before it.
        revise.start_over(state)
    return state, out


def advance(
    state: PersonState, watermark_ms: int, config: JourneyConfig
) -> tuple[PersonState | None, list[Output]]:
    """Close what the watermark has passed; return None when nothing is left worth keeping."""
    out: list[Output] = []
    if watermark_ms > state.advanced_ms:
        state.advanced_ms = watermark_ms
    if state.pending and state.pending[0][0] <= watermark_ms:
        _release(state, watermark_ms, config, out)
    if state.session is not None or state.checkout is not None:
        settle(state, watermark_ms, config, out)
    due = memory_deadline(state, config)
    if due is not None and due <= watermark_ms:
        _forget(state, watermark_ms, config)
    if not (
        state.session
        or state.checkout
        or state.seen
        or state.contacts
        or state.recent_packed
        or state.pending
        or state.sources
        or state.handovers
        or state.history
        or state.handed
        or state.transactions
    ):
        return None, out
    return state, out


def _forget(state: PersonState, watermark_ms: int, config: JourneyConfig) -> None:
    """Forget what the horizons have passed; tuples are rebuilt only when something goes."""
    horizon = watermark_ms - config.dedup_horizon_ms
    state.seen = dedup.forget_before(state.seen, horizon)
    state.transactions = transactions.forget(state.transactions, watermark_ms, config)
    if state.sources and min(t for _, _, t in state.sources) < horizon:
        state.sources = tuple(g for g in state.sources if g[2] >= horizon)
    if state.handovers and min(h[1] for h in state.handovers) < horizon:
        state.handovers = tuple(h for h in state.handovers if h[1] >= horizon)
    late_horizon = watermark_ms - config.late_horizon_ms
    state.recent_packed = closed.forget_before(state.recent_packed, late_horizon)
    oldest = revise.oldest(state)
    if oldest is not None and revise.forget_due(oldest, config) <= watermark_ms:
        revise.forget(state, revise.forget_from(watermark_ms, config))
    contacts_from = watermark_ms - contacts_kept_ms(state, config)
    if state.contacts and min(c[0] for c in state.contacts) < contacts_from:
        state.contacts = tuple(c for c in state.contacts if c[0] >= contacts_from)


def contacts_kept_ms(state: PersonState, config: JourneyConfig) -> int:
    """How long behind the watermark a support contact is remembered: the repeat-contact
    window, and, for a person whose journey can be revised, the revision horizon too. A
    contact that arrives late but in its person's order (the store's call centre file loaded
    after the web's day) is judged against the contacts of its own day, not the watermark's."""
    window = config.rules.repeat_contact.window_ms
    return window + config.revision_horizon_ms if state.history is not None else window


def next_deadline(state: PersonState, config: JourneyConfig) -> int | None:
    """The smallest watermark at which `advance` would change something (None: nothing pending).

    Runs after every step of every person, so it avoids building lists: each candidate is
    compared as it comes.
    """
    best = state.pending[0][0] if state.pending else None
    s = state.session
    if s is not None:
        gap_end = s.last_ms + config.session_gap_ms + 1
        cap_end = s.started_ms + config.session_cap_ms
        d = gap_end if gap_end < cap_end else cap_end
        if best is None or d < best:
            best = d
    if state.checkout is not None:
        d = state.checkout.last_ms + config.rules.checkout_abandoned.timeout_ms + 1
        if best is None or d < best:
            best = d
    d_memory = memory_deadline(state, config)
    if d_memory is not None and (best is None or d_memory < best):
        best = d_memory
    return best


def memory_deadline(state: PersonState, config: JourneyConfig) -> int | None:
    """The smallest watermark at which a horizon forgets something of the person's memories
    (dedup, transactions, replay guards, hand-overs, closed sessions, contacts, history): the
    oldest entry of each. Before it, `_forget` would change nothing, so `advance` skips it."""
    best = None
    dedup_after = config.dedup_horizon_ms + 1
    if state.seen:
        best = dedup.oldest_of(state.seen) + dedup_after
    if state.transactions:
        # transactions.deadline, inlined: kept the dedup and the revision horizons
        d = dedup.oldest_of(state.transactions) + dedup_after + config.revision_horizon_ms
        if best is None or d < best:
            best = d
    if state.sources:
        d = min(g[2] for g in state.sources) + dedup_after
        if best is None or d < best:
            best = d
    if state.handovers:
        d = min(h[1] for h in state.handovers) + dedup_after
        if best is None or d < best:
            best = d
    if state.recent_packed:  # sorted by end
        d = closed.oldest_end(state.recent_packed) + config.late_horizon_ms + 1
        if best is None or d < best:
            best = d
    if state.contacts:
        d = min(c[0] for c in state.contacts) + contacts_kept_ms(state, config) + 1
        if best is None or d < best:
            best = d
    history = state.history
    if history or state.handed:  # revise.forget_due, inlined: this runs after every step
        oldest = history[0][0] if history else state.handed[0].at_ms
        if state.handed and state.handed[0].at_ms < oldest:
            oldest = state.handed[0].at_ms
        d = oldest + (
            config.revision_horizon_ms + config.session_gap_ms + revise.FORGET_STEP_MS + 1
        )
        if best is None or d < best:
            best = d
    return best


def _on_event(
    state: PersonState, msg: Routed, config: JourneyConfig
) -> tuple[PersonState, list[Output]]:
    """Hold an on-time event until the watermark passes it; apply a behind-the-watermark one now."""
    ev = msg.event
    out: list[Output] = []
    ts = ev.ts_ms
    if ev.device_id is None:
        key = event_key(ev.event_id)
        if dedup.contains(state.seen, key):
            return state, [Duplicate(ev.event_id, state.person_id)]
        state.seen = dedup.remember(state.seen, key, ts)
    # The stage's watermark only: a person's own newest event says nothing about their other
    # devices, whose events may travel through partitions that are behind.
    watermark = msg.watermark_ms
    w = to_waiting(msg, state)
    if ts > watermark and revise.in_order(state, w):
        state.pending = with_waiting(state.pending, w)
        if state.pending[0][0] <= watermark:
            _release(state, watermark, config, out)
        return state, out
    # Behind the watermark (or behind what was applied early, `release_waiting`): first what
    # waited before it, then it, then the rest.
    order = waiting_order(w)
    if state.pending and waiting_order(state.pending[0]) < order:
        _release(state, watermark, config, out, before=order)
    if revise.in_order(state, w):
        apply_event(state, w, ts, config, out)
        revise.remember(state, w)
    else:
        # What the person was last advanced to is decided (events applied in order since may
        # have opened a visit that is already over by then): a replay decides the same.
        settle(state, state.advanced_ms, config, out)
        revised = revise.revise(state, w, watermark, config)
        if revised is not None:
            out.extend(revised)  # type: ignore[arg-type]
        else:  # beyond what a replay can reach: kept and flagged late, as it comes
            apply_event(state, w, watermark, config, out)
            state.advanced_ms = max(state.advanced_ms, watermark)  # it decided up to there
            # Applied out of order, it is in no replay's history: no replay may start before it.
            revise.start_over(state)
    if state.pending and state.pending[0][0] <= watermark:
        _release(state, watermark, config, out)
    return state, out


def release_waiting(state: PersonState, config: JourneyConfig) -> list[Output]:
    """Apply now, in event-time order, the events still waiting for the watermark (the end of a
    run whose input goes on later): so the tables show them today. An event of the next run
    that belongs before them is then behind this person's journey and revises it
    (`streams.core.revise`), which gives what applying it in order would have given."""
    out: list[Output] = []
    if state.pending:
        _release(state, state.pending[-1][0], config, out)
    return out


def _release(
    state: PersonState,
    watermark: int,
    config: JourneyConfig,
    out: list[Output],
    before: tuple[int, str] | None = None,
) -> None:
    """Apply, in event-time order, every pending event the watermark has passed (and that
    comes `before` the given (time, id), when given)."""
    while state.pending and state.pending[0][0] <= watermark:
        waiting = state.pending[0]
        if before is not None and waiting_order(waiting) >= before:
            return
        state.pending = state.pending[1:]
        # Applied in order, an event is judged at its own time: nothing after it is known yet.
        apply_event(state, waiting, waiting[0], config, out)
        history = state.history  # kept for revisions: the newest applied, so appended (fast path)
        if history and history[-1][0] < waiting[0]:
            history.append(waiting)
        else:
            revise.remember(state, waiting)
