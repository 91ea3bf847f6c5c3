"""Identity resolution: which person does an event belong to?

Intuition: a person is the customer when the event names one, else the device it came from
(`anon:<device_id>`). An event naming both links the device to the customer. Each device keeps a
short, time-ordered history of links, so the person of a device-only event at time t is the
customer linked latest at or before t; an event from before the device's *first* link (within
the retro window) belongs to that first customer. Two customers are never merged: a shared
device simply re-links to whoever logged in last, from that event on, and its earlier history
stays where it was.

Shared devices: a POS till or a kiosk serves one member of the public after another, so it
says nothing about who is in front of it. An event from a shared device (`JourneyConfig.
shared_device_types` / `shared_device_patterns`) never links the device and never takes its
person from the device's links: a loyalty-card receipt belongs to its customer, and a guest's
events belong to a *guest visit* of their own, `anon:<device>:<first event id of the visit>`.
A guest visit is what one unidentified person does at the device: it ends at a receipt (a
`purchase`: the next guest is someone else), at any event naming a customer, or after the
session gap without an event. No `IdentityLink` is ever emitted for a shared device, so the
query-time views (0003_resolved_views.sql) never re-attribute its rows either.

The step is keyed by device (in Faust, a table partitioned by device id). Its outputs:
`Routed` (the event and its person, for the per-person journey step), `IdentityLink` (stored so
queries re-attribute rows written before the link) and `LinkNotice` (tells the anonymous person
of a device that it now belongs to a customer, so its open session can join the customer's).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from schemas import Event
from streams.core import dedup
from streams.core.config import JourneyConfig
from streams.core.identifiers import event_key
from streams.core.records import IdentityLink
from streams.core.transactions import transaction_of


@dataclass(slots=True)
class DeviceIdentity:
    """Links of one device: (linked_at_ms, customer_id), oldest first, and its recent event ids.

    Duplicates are caught here, before routing: a re-sent event must not reach another person
    because the device was re-linked in between. Both fields are immutable and replaced when
    they change (links rarely change; see `streams.core.dedup` for the memory of event ids).

    The links are one flat tuple, `(linked_at_ms, customer_id, linked_at_ms, customer_id...)`:
    a pair tuple per link would cost 56 bytes more each, in every device kept for the dedup
    horizon. `links` reads them as pairs.
    """

    linked: tuple[Any, ...] = ()
    #: Dedup memory (`streams.core.dedup`): the event ids of the dedup horizon.
    seen: bytes = dedup.EMPTY
    #: A shared device's open guest visit: `(person_id, last_event_ms)`, or () when none is open.
    guest: tuple[Any, ...] = ()

    @property
    def links(self) -> tuple[tuple[int, str], ...]:
        return link_pairs(self.linked)


def link_pairs(linked: tuple[Any, ...]) -> tuple[tuple[int, str], ...]:
    """The (linked_at_ms, customer_id) pairs of a flat `DeviceIdentity.linked`."""
    return tuple(zip(linked[::2], linked[1::2], strict=True))


def flat_links(links: Iterable[tuple[int, str]]) -> tuple[Any, ...]:
    """Inverse of `link_pairs`."""
    return tuple(part for link in links for part in link)


@dataclass(frozen=True, slots=True)
class Duplicate:
    """An event id already processed: counted, not processed again."""

    event_id: str
    key: str


@dataclass(frozen=True, slots=True)
class Routed:
    """An event on its way to the journey step of `person_id`.

    `watermark_ms` is the stream watermark when the event was routed: the journey step uses it to
    tell an on-time event from a late one without any clock of its own.

    `source` and `position` are the replay guard: where the event was read from (the worker
    passes `"{topic}/{partition}"`) and a position that only grows along that source (the worker
    passes `offset * 65536 + index_in_array`). The journey step drops an input whose position is
    not beyond the last one it applied from that source (a consumer re-reading old offsets after
    a restart). Empty source or a negative position: no guard (the embedded pipeline, tests).
    """

    person_id: str
    event: Event
    watermark_ms: int
    received_at_ms: int
    source: str = ""
    position: int = -1


@dataclass(frozen=True, slots=True)
class LinkNotice:
    """`anon_person_id`'s device now belongs to `customer_id` (sent to the anonymous person)."""

    anon_person_id: str
    customer_id: str
    device_id: str
    linked_at_ms: int
    #: Stream watermark when sent: the notice waits, like an event, until event time reaches it.
    watermark_ms: int = 0


def anonymous_person(device_id: str) -> str:
    return f"anon:{device_id}"


def is_shared_device(event: Event, config: JourneyConfig) -> bool:
    """Does the event come from a device shared by the public (a till, a kiosk)?

    Decided per event: by `properties.device_type`, or by the device id against the configured
    glob patterns (which also catch a till that does not always send its type).
    """
    device = event.device_id
    if not device:
        return False
    device_type = event.properties.get("device_type")  # `Event.device_type`, without the call
    if isinstance(device_type, str) and device_type in config.shared_device_types:
        return True
    patterns = config.shared_device_patterns
    return bool(patterns) and any(fnmatchcase(device, pattern) for pattern in patterns)


def guest_visit(state: DeviceIdentity, event: Event, config: JourneyConfig) -> str:
    """The person of a guest (no customer) event on a shared device; updates the open visit.

    The visit goes on while events follow within the session gap of its last one; a receipt
    closes it (it belongs to the visit it closes). Arrival order decides, as for links.
    """
    ts = event.ts_ms
    visit = state.guest if state.guest and abs(ts - state.guest[1]) <= config.session_gap_ms else ()
    person = (
        str(visit[0]) if visit else f"{anonymous_person(event.device_id or '')}:{event.event_id}"
    )
    last = max(ts, int(visit[1])) if visit else ts
    state.guest = () if event.event_type == "purchase" else (person, last)
    return person


def person_of_device(state: DeviceIdentity | None, ts_ms: int, config: JourneyConfig) -> str | None:
    """The customer a device-only event at `ts_ms` belongs to, or None if still anonymous."""
    if state is None or not state.linked:
        return None
    linked = state.linked
    current: str | None = None
    for i in range(0, len(linked), 2):
        if linked[i] > ts_ms:
            break
        current = linked[i + 1]
    if current is not None:
        return current
    first_at, first_customer = linked[0], linked[1]
    return first_customer if ts_ms >= first_at - config.retro_window_ms else None


def resolve_person(event: Event, state: DeviceIdentity | None, config: JourneyConfig) -> str:
    """Person of an event given the device's links (no state change)."""
    if event.customer_id:
        return event.customer_id
    if event.device_id:
        return person_of_device(state, event.ts_ms, config) or anonymous_person(event.device_id)
    # A store receipt with neither a loyalty card nor a device: a one-off guest, named after
    # the receipt (its store and transaction) so that a re-export of it under a new event id
    # is the same guest and counts once (`streams.core.transactions`).
    tx = transaction_of(event)
    if tx is None:
        return f"guest:{event.event_id}"
    store = event.properties.get("store_id")
    return f"guest:{store}/{tx}" if isinstance(store, str) and store else f"guest:{tx}"


IdentityOutput = Routed | IdentityLink | LinkNotice | Duplicate


def identity_step(
    state: DeviceIdentity | None,
    event: Event,
    config: JourneyConfig,
    *,
    watermark_ms: int,
    received_at_ms: int,
    source: str = "",
    position: int = -1,
) -> tuple[DeviceIdentity | None, list[IdentityOutput]]:
    """Resolve one event's person; link its device when it names a customer too.

    `source` and `position` are copied onto the `Routed` output (see `Routed`).
    """
    outputs: list[IdentityOutput] = []
    device, customer, ts = event.device_id, event.customer_id, event.ts_ms
    if device:
        state = state or DeviceIdentity()
        key = event_key(event.event_id)
        if dedup.contains(state.seen, key):
            return state, [Duplicate(event.event_id, device)]
        state.seen = dedup.remember(state.seen, key, ts)
        if is_shared_device(event, config):
            # No link, no notice, no person from links (module docstring, "Shared devices").
            if customer:
                state.guest = ()
                person = customer
            else:
                person = guest_visit(state, event, config)
            outputs.append(Routed(person, event, watermark_ms, received_at_ms, source, position))
            return state, outputs
    if device and customer:
        assert state is not None
        in_force = person_of_device(state, ts, config)
        first_link = not state.linked
        earliest = not first_link and ts < state.linked[0]
        if in_force != customer or earliest:
            links = sorted((*state.links, (ts, customer)))
            if len(links) > config.max_links_per_device:
                # Keep the first link (it anchors retro-attribution) and the newest ones.
                del links[1]
            state.linked = flat_links(links)
            outputs.append(IdentityLink(device, customer, ts, config.retro_window_ms))
            if first_link:
                outputs.append(
                    LinkNotice(anonymous_person(device), customer, device, ts, watermark_ms)
                )
    person = resolve_person(event, state, config)
    outputs.append(Routed(person, event, watermark_ms, received_at_ms, source, position))
    return state, outputs


def prune_device(
    state: DeviceIdentity, watermark_ms: int, config: JourneyConfig
) -> DeviceIdentity | None:
    """Forget event ids past the dedup horizon; None when nothing is left worth keeping."""
    state.seen = dedup.forget_before(state.seen, watermark_ms - config.dedup_horizon_ms)
    if state.guest and state.guest[1] < watermark_ms - config.session_gap_ms:
        state.guest = ()
    return state if state.linked or state.seen or state.guest else None
