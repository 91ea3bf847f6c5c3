"""Identity merges: an anonymous person's open visit joining the customer it turned out to be.

Intuition: when a device logs in, the identity step sends a `LinkNotice` to the device's
anonymous person. That person hands over at once whatever is still open (session, checkout
attempt, events waiting for the watermark) in a `Handover` addressed to the customer. The
customer's side then either merges the two sessions (one visit seen under two identities: the
one that started first survives, and a `SessionMerge` tells storage to re-attribute the other's
rows) or, if they are two different visits, closes the earlier one and keeps the later open.

The customer also takes over what the anonymous person remembers of its purchases' transactions
(`streams.core.transactions`), combined with its own: a receipt re-sent after the login (under
the customer, or by the device alone: the device's events now go to the customer) counts once.

A handover is applied once: a re-delivered one (same `from_person` and `at_ms`, e.g. a consumer
re-reading old offsets) is a no-op. Each is remembered for the dedup horizon.

The customer takes a hand-over over at its place in event time, the login's (`journey`): after
the customer's own events up to then, with what event time had closed by then closed. One that
arrives behind what the customer already decided (the app's file loaded after the web's) is put
in its place by a revision (`streams.core.revise`), like a late event.
"""

from __future__ import annotations

from streams.core import checkout as co
from streams.core import dedup, revise
from streams.core.config import JourneyConfig
from streams.core.identity import LinkNotice
from streams.core.person import (
    Handover,
    Output,
    PersonState,
    close_session,
    with_waiting,
)
from streams.core.records import SessionMerge
from streams.core.session import PUBLISHED, absorb, summarise


def on_link(state: PersonState | None, msg: LinkNotice) -> tuple[PersonState | None, list[Output]]:
    """This anonymous person's device was linked: hand over at once what is still open.

    At once, not in event-time order: the customer's side can only merge what reaches it before
    its own session closes, and the notice travels right behind the anonymous events, through
    the same partition. Waiting events go along and are applied by the customer, in order.
    """
    if state is None:
        return None, []
    handover = Handover(
        into_person=msg.customer_id,
        from_person=state.person_id,
        session=state.session,
        checkout=state.checkout,
        at_ms=msg.linked_at_ms,
        pending=state.pending,
        transactions=state.transactions,
        contacts=state.contacts,
        watermark_ms=msg.watermark_ms,
    )
    state.session, state.checkout, state.pending, state.contacts = None, None, (), ()
    # What was handed over is the customer's now: no replay of this person may redo it.
    revise.start_over(state)
    state.transactions = dedup.EMPTY
    return state, [handover]


def already_taken(state: PersonState, msg: Handover) -> bool:
    """Whether `msg` was applied before (a re-delivery); if not, it is marked applied now."""
    mark = (msg.from_person, msg.at_ms)
    if mark in state.handovers:  # delivered again (a replay): applied once already
        return True
    state.handovers = (*state.handovers, mark)
    return False


def take_over(state: PersonState, msg: Handover, config: JourneyConfig) -> list[Output]:
    """Join the anonymous session to this person's: one visit or two (see the module)."""
    out: list[Output] = []
    for waiting in msg.pending:  # plain tuples without a person: this person's events now
        state.pending = with_waiting(state.pending, waiting)
    state.checkout = co.combine(state.checkout, msg.checkout)
    state.transactions = dedup.union(state.transactions, msg.transactions)
    if msg.contacts:
        state.contacts = tuple(sorted({*state.contacts, *msg.contacts}))
    incoming = msg.session
    if incoming is None:
        return out
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
        if absorbed.flags & PUBLISHED:  # shown while open: withdraw its row
            owner = state.person_id if absorbed is s else msg.from_person
            out.append(summarise(absorbed, owner, False, is_deleted=True))
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
        # No base here: this close is part of taking the hand-over over, which a replay from
        # a base saved now would not take again (it takes those after the base's time, and
        # the earlier visit may end after the login's); a replay starts before the hand-over.
        close_session(state, config, out, base=False)
        state.session = later
    return out
