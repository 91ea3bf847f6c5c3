"""Events waiting for the watermark, as flat tuples of plain data (`Waiting`), and back.

Why tuples: every on-time event waits in its person's state until the watermark passes it, and
with revisions (streams/core/revise.py) every applied event is kept for the revision horizon;
a flat tuple is the cheapest plain form of a validated event, and it is what the changelogs
and snapshots carry (streams/core/codec.py).
"""

from __future__ import annotations

from bisect import bisect_right
from typing import TYPE_CHECKING, Any

from schemas import Channel, Event
from schemas.event import trusted_event
from schemas.properties import CANONICAL
from streams.core.identity import Routed
from streams.core.session import DEVICE_TYPES, known_device
from streams.core.strings import shared_page

if TYPE_CHECKING:
    from streams.core.person import PersonState

#: An event waiting for the watermark, as one flat tuple of plain data (it was validated when
#: decoded): (ts_ms, event_id, event_type, channel, device_id, customer_id, schema_version,
#: watermark_ms, received_at_ms, source, position, key, value, key, value...). The event's
#: properties follow as key/value pairs rather than in a dict of their own: a dict costs 184
#: bytes however few its keys (the keys themselves are strings the decoder shares). Sorted by
#: (ts_ms, event_id).
Waiting = tuple[Any, ...]
#: Where `received_at_ms` and the first property key are in a `Waiting`.
W_RECEIVED, _W_PROPS = 8, 11


#: The contract's event types, one string object each (a waiting event keeps its own copy else).
EVENT_TYPES = {name: name for name in CANONICAL}


def to_waiting(msg: Routed, state: PersonState | None = None) -> Waiting:
    """The waiting form of `msg`. Given the person's state, strings it already holds (its id,
    its session's devices) are shared rather than kept once more per waiting event; so are the
    device type and the page, whoever holds them (`DEVICE_TYPES`, `shared_page`)."""
    ev = msg.event
    customer, device = ev.customer_id, ev.device_id
    if state is not None:
        if customer == state.person_id:
            customer = state.person_id
        if state.session is not None:
            device = known_device(state.session, device)
    props: list[Any] = []
    for key, value in ev.properties.items():
        if type(value) is str:
            if key == "device_type":
                value = DEVICE_TYPES.get(value, value)
            elif key == "page" or key == "screen":
                value = shared_page(value)
        props += (key, value)
    return (
        ev.ts_ms,
        ev.event_id,
        EVENT_TYPES.get(ev.event_type, ev.event_type),
        CHANNEL_VALUE[ev.channel],
        device,
        customer,
        ev.schema_version,
        msg.watermark_ms,
        msg.received_at_ms,
        msg.source,
        msg.position,
        *props,
    )


_CHANNELS = {c.value: c for c in Channel}
#: Channel -> its value (a dict lookup is several times faster than the enum's `.value`).
CHANNEL_VALUE = {c: c.value for c in Channel}


def event_of(w: Waiting) -> Event:
    """The event a waiting tuple holds (no re-validation: it was valid when it arrived).
    tests/core/test_waiting_events.py checks the result equals the validated event."""
    return trusted_event(w[1], w[2], w[0], _CHANNELS[w[3]], w[4], w[5], properties_of(w), w[6])


def properties_of(w: Waiting) -> dict[str, Any]:
    """The event's properties, as a dict again (what its event row stores)."""
    return dict(zip(w[_W_PROPS::2], w[_W_PROPS + 1 :: 2], strict=True))


def from_waiting(w: Waiting, person_id: str) -> Routed:
    """The `Routed` a waiting tuple came from."""
    return Routed(person_id, event_of(w), w[7], w[8], w[9], w[10])


def waiting_order(w: Waiting) -> tuple[int, str]:
    return w[0], w[1]


def with_waiting(pending: tuple[Waiting, ...], w: Waiting) -> tuple[Waiting, ...]:
    """`pending` with `w` inserted in (ts_ms, event_id) order."""
    at = bisect_right(pending, waiting_order(w), key=waiting_order)
    return (*pending[:at], w, *pending[at:])
