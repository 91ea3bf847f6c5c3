"""Plain-data forms of the core's state and messages, for changelog tables and topics.

Intuition: state and messages are slotted dataclasses in memory (compact, fast) and JSON-able
dicts on the wire. Tuples become lists in JSON, so decoding turns them back; the dedup memory
(bytes) travels as one base64 string and a session's channel mask as the list of its channels.

Decoding also reads what older versions wrote to the changelogs (dedup memory as a dict of
keys, sessions with a `person_id` and lists, persons without replay guards or transaction
memory, handovers without transaction memory), so a worker restored from an older changelog
carries on.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from schemas import Event
from streams.core import closed, dedup
from streams.core.aggregates import AggregateState, Bucket
from streams.core.checkout import CheckoutAttempt
from streams.core.identity import DeviceIdentity, LinkNotice, Routed, flat_links
from streams.core.person import Base, Handover, PersonState, Waiting, from_waiting, to_waiting
from streams.core.records import (
    EventRow,
    FrictionSignal,
    IdentityLink,
    MinuteAggregate,
    Record,
    SessionMerge,
    SessionSummary,
)
from streams.core.session import SessionState, session_from_dict, session_to_dict


def device_to_dict(state: DeviceIdentity) -> dict[str, Any]:
    data: dict[str, Any] = {"links": state.links, "seen": dedup.to_wire(state.seen)}
    if state.guest:
        data["guest"] = list(state.guest)
    return data


def device_from_dict(data: dict[str, Any]) -> DeviceIdentity:
    return DeviceIdentity(
        linked=flat_links((int(at), str(c)) for at, c in data["links"]),
        seen=dedup.from_wire(data["seen"]),
        guest=tuple(data.get("guest", ())),
    )


def _session_from(data: dict[str, Any] | None) -> SessionState | None:
    return None if data is None else session_from_dict(data)


def _session_to(session: SessionState | None) -> dict[str, Any] | None:
    return None if session is None else session_to_dict(session)


def _checkout_from(data: dict[str, Any] | None) -> CheckoutAttempt | None:
    return None if data is None else CheckoutAttempt(**data)


def person_to_dict(state: PersonState) -> dict[str, Any]:
    return {
        "person_id": state.person_id,
        "session": _session_to(state.session),
        "recent": state.recent,
        "checkout": asdict(state.checkout) if state.checkout else None,
        "contacts": state.contacts,
        "seen": dedup.to_wire(state.seen),
        "pending": [message_to_dict(from_waiting(w, state.person_id)) for w in state.pending],
        "sources": {source: [p, t] for source, p, t in state.sources},
        "handovers": [[f, at] for f, at in state.handovers],
        "history": None
        if state.history is None
        else [message_to_dict(from_waiting(w, state.person_id)) for w in state.history],
        "bases": [
            [at, asdict(c) if c else None, c_list, dedup.to_wire(tx)]
            for at, c, c_list, tx in state.bases
        ],
        "decided_ms": state.decided_ms,
        "transactions": dedup.to_wire(state.transactions),
        "handed": [message_to_dict(h) for h in state.handed],
        "advanced_ms": state.advanced_ms,
    }


def person_from_dict(data: dict[str, Any]) -> PersonState:
    return PersonState(
        person_id=data["person_id"],
        session=_session_from(data["session"]),
        recent_packed=closed.pack((str(i), int(a), int(b)) for i, a, b in data["recent"]),
        checkout=_checkout_from(data["checkout"]),
        contacts=tuple((int(t), str(m), str(c)) for t, m, c in data["contacts"]),
        seen=dedup.from_wire(data["seen"]),
        pending=tuple(_pending(m) for m in data.get("pending", [])),
        sources=tuple((str(k), int(p), int(t)) for k, (p, t) in data.get("sources", {}).items()),
        handovers=tuple((str(f), int(at)) for f, at in data.get("handovers", [])),
        # Written before revisions: nothing to replay from until a session closes.
        history=None if data.get("history") is None else [_pending(m) for m in data["history"]],
        bases=tuple(_base(b) for b in data.get("bases", [])),
        decided_ms=int(data.get("decided_ms", 0)),
        transactions=dedup.from_wire(data.get("transactions", "")),
        handed=tuple(_handover(m) for m in data.get("handed", [])),
        advanced_ms=int(data.get("advanced_ms", 0)),
    )


def _base(data: list[Any]) -> Base:
    """A replay's starting point (written before transactions were kept: none remembered)."""
    at, c, cs = data[0], data[1], data[2]
    tx = dedup.from_wire(data[3]) if len(data) > 3 else dedup.EMPTY
    return (int(at), _checkout_from(c), tuple((int(t), str(m), str(ch)) for t, m, ch in cs), tx)


def _handover(data: dict[str, Any]) -> Handover:
    msg = message_from_dict(data)
    if not isinstance(msg, Handover):
        raise ValueError("handed entries are hand-overs")
    return msg


def _pending(data: dict[str, Any]) -> Waiting:
    """A waiting event travels as an `event` message (the same form as on the journey topic)."""
    msg = message_from_dict(data)
    if not isinstance(msg, Routed):
        raise ValueError("pending entries are events")
    return to_waiting(msg)


def event_to_dict(event: Event) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "ts_ms": event.ts_ms,
        "channel": event.channel.value,
        "device_id": event.device_id,
        "customer_id": event.customer_id,
        "properties": event.properties,
        "schema_version": event.schema_version,
    }


def event_from_dict(data: dict[str, Any]) -> Event:
    from schemas import ms_to_datetime

    return Event(
        event_id=data["event_id"],
        event_type=data["event_type"],
        occurred_at=ms_to_datetime(int(data["ts_ms"])),
        channel=data["channel"],
        device_id=data["device_id"],
        customer_id=data["customer_id"],
        properties=data["properties"],
        schema_version=data["schema_version"],
    )


def message_to_dict(msg: Routed | LinkNotice | Handover) -> dict[str, Any]:
    """A journey-step input as a tagged dict (`kind` says which)."""
    if isinstance(msg, Routed):
        return {
            "kind": "event",
            "person_id": msg.person_id,
            "event": event_to_dict(msg.event),
            "watermark_ms": msg.watermark_ms,
            "received_at_ms": msg.received_at_ms,
            "source": msg.source,
            "position": msg.position,
        }
    if isinstance(msg, LinkNotice):
        return {"kind": "link", **asdict(msg)}
    return {
        "kind": "handover",
        "into_person": msg.into_person,
        "from_person": msg.from_person,
        "session": _session_to(msg.session),
        "checkout": asdict(msg.checkout) if msg.checkout else None,
        "at_ms": msg.at_ms,
        "pending": [message_to_dict(from_waiting(w, msg.from_person)) for w in msg.pending],
        "transactions": dedup.to_wire(msg.transactions),
        "contacts": msg.contacts,
        "watermark_ms": msg.watermark_ms,
    }


def message_from_dict(data: dict[str, Any]) -> Routed | LinkNotice | Handover:
    kind = data["kind"]
    if kind == "event":
        return Routed(
            data["person_id"],
            event_from_dict(data["event"]),
            int(data["watermark_ms"]),
            int(data["received_at_ms"]),
            str(data.get("source", "")),
            int(data.get("position", -1)),
        )
    if kind == "link":
        return LinkNotice(
            data["anon_person_id"],
            data["customer_id"],
            data["device_id"],
            int(data["linked_at_ms"]),
            int(data.get("watermark_ms", 0)),
        )
    if kind == "handover":
        return Handover(
            into_person=data["into_person"],
            from_person=data["from_person"],
            session=_session_from(data["session"]),
            checkout=_checkout_from(data["checkout"]),
            at_ms=int(data["at_ms"]),
            pending=tuple(_pending(d) for d in data.get("pending", [])),
            transactions=dedup.from_wire(data.get("transactions", "")),
            contacts=tuple((int(t), str(m), str(c)) for t, m, c in data.get("contacts", ())),
            watermark_ms=int(data.get("watermark_ms", 0)),
        )
    raise ValueError(f"unknown journey message kind {kind!r}")


def record_to_dict(record: object) -> dict[str, Any]:
    """A core output record as a tagged dict for the records topic (`kind` = class name)."""
    data: dict[str, Any] = asdict(record)  # type: ignore[call-overload]
    data["kind"] = type(record).__name__
    return data


def record_from_dict(data: dict[str, Any]) -> Record:
    """Inverse of `record_to_dict`; fields added since a record was written take their
    defaults (an `EventRow` without `duplicate_transaction` is not a copy)."""
    kind = data.pop("kind")
    cls = _RECORD_TYPES.get(kind)
    if cls is None:
        raise ValueError(f"unknown record kind {kind!r}")
    if cls is SessionSummary:
        data["channels"] = tuple(data["channels"])
        data["devices"] = tuple(data["devices"])
    record: Record = cls(**data)
    return record


_RECORD_TYPES: dict[str, Any] = {
    cls.__name__: cls
    for cls in (
        EventRow,
        SessionSummary,
        FrictionSignal,
        IdentityLink,
        SessionMerge,
        MinuteAggregate,
    )
}


# --- per-minute aggregates (journey partition checkpoints, embedded snapshots) ----------


def aggregates_meta(state: AggregateState) -> dict[str, Any]:
    return {
        "shard": state.shard,
        "last_cleanup_ms": state.last_cleanup_ms,
        "dropped": state.dropped,
        "watermark_ms": state.watermark_ms,
    }


def minute_buckets(state: AggregateState, minute_ms: int) -> list[list[Any]] | None:
    """One minute's buckets as plain lists (None: the minute was forgotten)."""
    keys = state.minutes.get(minute_ms)
    if keys is None:
        return None
    dirty = state.dirty.get(minute_ms, set())
    return [
        [key[1], key[2], key[3], b.count, b.amount, b.version, key in dirty]
        for key in keys
        for b in (state.buckets[key],)
    ]


def aggregates_from_parts(
    meta: dict[str, Any], minutes: dict[int, list[list[Any]]]
) -> AggregateState:
    state = AggregateState(
        shard=meta["shard"],
        last_cleanup_ms=meta["last_cleanup_ms"],
        dropped=meta["dropped"],
        watermark_ms=meta["watermark_ms"],
    )
    for minute, rows in sorted(minutes.items()):
        for channel, metric, key, count, amount, version, dirty in rows:
            bucket_key = (minute, channel, metric, key)
            state.buckets[bucket_key] = Bucket(count, amount, version)
            state.minutes.setdefault(minute, []).append(bucket_key)
            if dirty:
                state.dirty.setdefault(minute, set()).add(bucket_key)
    return state
