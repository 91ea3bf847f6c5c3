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

from bisect import insort

from streams.core.config import JourneyConfig
from streams.core.identifiers import event_key
from streams.core.identity import Duplicate, LinkNotice, Routed
from streams.core.merges import on_handover, on_link
from streams.core.person import (
    Handover,
    Output,
    PersonState,
    apply_event,
    close_session,
    expire_checkout,
    expired,
    from_waiting,
    to_waiting,
    waiting_order,
)

__all__ = [
    "Handover",
    "JourneyInput",
    "Output",
    "PersonState",
    "advance",
    "journey_step",
    "next_deadline",
]

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
        return on_link(state, msg)
    return on_handover(state or PersonState(msg.into_person), msg, config)


def advance(
    state: PersonState, watermark_ms: int, config: JourneyConfig
) -> tuple[PersonState | None, list[Output]]:
    """Close what the watermark has passed; return None when nothing is left worth keeping."""
    out: list[Output] = []
    _release(state, watermark_ms, config, out)
    s = state.session
    if s is not None and expired(s, watermark_ms, config):
        close_session(state, config, out)
    expire_checkout(state, watermark_ms, config, out)
    horizon = watermark_ms - config.dedup_horizon_ms
    if state.seen and min(state.seen.values()) < horizon:
        state.seen = {k: t for k, t in state.seen.items() if t >= horizon}
    if state.sources and min(t for _, t in state.sources.values()) < horizon:
        state.sources = {k: v for k, v in state.sources.items() if v[1] >= horizon}
    state.handovers = [h for h in state.handovers if h[1] >= horizon]
    late_horizon = watermark_ms - config.late_horizon_ms
    state.recent = [r for r in state.recent if r[2] >= late_horizon]
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
    # What the horizons forget: the oldest entry of each memory.
    dedup = config.dedup_horizon_ms + 1
    if state.seen:
        candidates.append(min(state.seen.values()) + dedup)
    if state.sources:
        candidates.append(min(t for _, t in state.sources.values()) + dedup)
    if state.handovers:
        candidates.append(min(h[1] for h in state.handovers) + dedup)
    if state.recent:
        # Appended at close, so nearly sorted by end; min keeps it exact after merges.
        candidates.append(min(r[2] for r in state.recent) + config.late_horizon_ms + 1)
    if state.contacts:
        oldest_contact = min(c[0] for c in state.contacts)
        candidates.append(oldest_contact + config.rules.repeat_contact.window_ms + 1)
    return min(candidates) if candidates else None


def _on_event(
    state: PersonState, msg: Routed, config: JourneyConfig
) -> tuple[PersonState, list[Output]]:
    """Hold an on-time event until the watermark passes it; apply a behind-the-watermark one now."""
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
        insort(state.pending, to_waiting(msg), key=waiting_order)
        _release(state, watermark, config, out)
        return state, out
    _release(state, watermark, config, out)
    apply_event(state, msg, watermark, config, out)
    return state, out


def _release(state: PersonState, watermark: int, config: JourneyConfig, out: list[Output]) -> None:
    """Apply, in event-time order, every pending event the watermark has passed."""
    while state.pending and state.pending[0][0] <= watermark:
        waiting = state.pending.pop(0)
        # Applied in order, an event is judged at its own time: nothing after it is known yet.
        apply_event(state, from_waiting(waiting, state.person_id), waiting[0], config, out)
