"""A person's state and the checkpoint's other entries as compact bytes (MessagePack), for the
journey changelog; and back, from these bytes or from the JSON that earlier versions wrote.

Intuition: a Kafka Streams-like changelog writes every touched person's state at each commit,
so the bytes of one serialised person are multiplied by the number of commits that touch
them. Most of a person's bytes are the events kept for the revision horizon (`history`,
about nine events of ~400 bytes each in JSON: every event a dict repeating its field names,
wrapped in a journey message repeating the person's id). Here a person is one MessagePack
array in the order of `PersonState`'s fields, and every waiting or applied event is its
`Waiting` tuple as it is in memory (a flat array of plain values, the person's id left
out), the session a flat array in `session_to_dict`'s key order, the dedup and transaction
memories and the closed sessions their packed bytes, a hand-over taken a flat array too.
That is about 3 times fewer bytes than the JSON form (954 against 3,080 B per person on a
simulated run; `tests/perf/kafka_e2e.py` prints the bytes per topic), and decoding skips
rebuilding and re-validating every event.

The bytes say which form they are: MessagePack arrays and maps start with a byte >= 0x80,
JSON with an ASCII one, so what an older worker wrote (JSON) is still read, as
`streams.core.codec` reads its older dicts. A person's array starts with `PERSON_FORMAT`;
one of another format is refused, never guessed at.

The embedded runner's snapshots stay the JSON dicts of `streams.core.snapshot` (a file written
once per run: bytes do not matter there, and existing snapshots stay readable).
"""

from __future__ import annotations

from dataclasses import astuple
from typing import Any

import msgspec
import orjson

from streams.core.checkout import CheckoutAttempt
from streams.core.codec import message_from_dict, person_from_dict
from streams.core.person import Handover, PersonState
from streams.core.session import (
    DEVICE_TYPES,
    SessionState,
    open_session,
    session_from_dict,
    session_to_dict,
)
from streams.core.strings import shared_page
from streams.core.waiting import EVENT_TYPES, Waiting
from streams.errors import ParcoursError

#: The first element of a person's array; changes when an older array can no longer be read.
PERSON_FORMAT = 2

#: The session's fields, in the order `session_to_dict` writes them (one list, not a second
#: copy of the field names that could drift from it).
SESSION_KEYS = tuple(session_to_dict(open_session("", 0)))

_PERSON_FIELDS = 16
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder()


class WireFormatError(ParcoursError):
    """Bytes that are no state this version can read (another format, or damaged):
    permanent, reading them again cannot help."""


def encode(value: Any) -> bytes:
    """Plain data (and `msgspec.Raw` of entries encoded already) as MessagePack."""
    return _encoder.encode(value)


def decode(data: bytes) -> Any:
    """Plain data from MessagePack, or from the JSON earlier versions wrote."""
    if not data:
        raise WireFormatError("empty value")
    if data[0] < 0x80:  # JSON starts with an ASCII byte, MessagePack containers never do
        return orjson.loads(data)
    try:
        return _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise WireFormatError(f"not MessagePack: {exc}") from exc


def person_to_bytes(state: PersonState, history_ref: dict[str, Any] | None = None) -> bytes:
    """The person's array; with `history_ref`, that map stands where the history's events
    would be (the worker keeps them apart, streams/worker/history_log.py)."""
    return _encoder.encode(_person_array(state, history_ref))


def person_from_bytes(data: bytes) -> PersonState:
    return person_from_plain(decode(data))


def history_ref(value: Any) -> dict[str, Any] | None:
    """The history reference a decoded person's array holds instead of its events, if any."""
    if isinstance(value, list) and len(value) > 10 and isinstance(value[10], dict):
        return value[10]
    return None


def person_from_plain(value: Any) -> PersonState:
    """A person from its decoded array, or from the dict of `codec.person_to_dict`. An array
    holding a history reference gives an empty history, for the caller to fill."""
    if isinstance(value, dict):
        return person_from_dict(value)
    if not isinstance(value, list) or not value or value[0] != PERSON_FORMAT:
        found = value[0] if isinstance(value, list) and value else type(value).__name__
        raise WireFormatError(f"person state of format {found!r}; this version reads 2")
    if len(value) != _PERSON_FIELDS:
        raise WireFormatError(f"person state of {len(value)} fields; format 2 has 16")
    (
        _,
        person_id,
        session,
        recent,
        checkout,
        contacts,
        seen,
        pending,
        sources,
        handovers,
        history,
        bases,
        decided_ms,
        transactions,
        handed,
        advanced_ms,
    ) = value
    return PersonState(
        person_id=person_id,
        session=None if session is None else _session(session),
        recent_packed=recent,
        checkout=None if checkout is None else CheckoutAttempt(*checkout),
        contacts=tuple((t, m, c) for t, m, c in contacts),
        seen=seen,
        pending=tuple(_waiting(w) for w in pending),
        sources=tuple((s, p, t) for s, p, t in sources),
        handovers=tuple((f, at) for f, at in handovers),
        history=None
        if history is None
        else []
        if isinstance(history, dict)
        else [_waiting(w) for w in history],
        bases=tuple(
            (
                at,
                None if c is None else CheckoutAttempt(*c),
                tuple((t, m, ch) for t, m, ch in cs),
                tx,
            )
            for at, c, cs, tx in bases
        ),
        decided_ms=decided_ms,
        transactions=transactions,
        handed=tuple(_handover(h) for h in handed),
        advanced_ms=advanced_ms,
    )


def waiting_list(value: list[Any]) -> list[Waiting]:
    """Events as `Waiting` tuples again, from their decoded arrays."""
    return [_waiting(w) for w in value]


def _person_array(s: PersonState, history_ref: dict[str, Any] | None = None) -> list[Any]:
    return [
        PERSON_FORMAT,
        s.person_id,
        None if s.session is None else list(session_to_dict(s.session).values()),
        s.recent_packed,
        None if s.checkout is None else astuple(s.checkout),
        s.contacts,
        s.seen,
        s.pending,
        s.sources,
        s.handovers,
        s.history if history_ref is None or s.history is None else history_ref,
        [(at, None if c is None else astuple(c), cs, tx) for at, c, cs, tx in s.bases],
        s.decided_ms,
        s.transactions,
        [_handover_array(h) for h in s.handed],
        s.advanced_ms,
    ]


def _session(values: list[Any]) -> SessionState:
    if len(values) != len(SESSION_KEYS):
        raise WireFormatError(
            f"session of {len(values)} fields; this version has {len(SESSION_KEYS)}"
        )
    return session_from_dict(dict(zip(SESSION_KEYS, values, strict=True)))


def _waiting(values: list[Any]) -> Waiting:
    """A waiting tuple again, sharing the strings many events hold (as `to_waiting` does)."""
    values[2] = EVENT_TYPES.get(values[2], values[2])
    for i in range(11, len(values) - 1, 2):
        key, value = values[i], values[i + 1]
        if type(value) is str:
            if key == "device_type":
                values[i + 1] = DEVICE_TYPES.get(value, value)
            elif key == "page" or key == "screen":
                values[i + 1] = shared_page(value)
    return tuple(values)


def _handover_array(h: Handover) -> list[Any]:
    return [
        h.into_person,
        h.from_person,
        None if h.session is None else list(session_to_dict(h.session).values()),
        None if h.checkout is None else astuple(h.checkout),
        h.at_ms,
        h.pending,
        h.transactions,
        h.contacts,
        h.watermark_ms,
    ]


def _handover(value: list[Any] | dict[str, Any]) -> Handover:
    if isinstance(value, dict):  # the journey message form, as `codec` writes it
        msg = message_from_dict(value)
        if not isinstance(msg, Handover):
            raise WireFormatError("handed entries are hand-overs")
        return msg
    into, source, session, checkout, at_ms, pending, transactions, contacts, wm = value
    return Handover(
        into_person=into,
        from_person=source,
        session=None if session is None else _session(session),
        checkout=None if checkout is None else CheckoutAttempt(*checkout),
        at_ms=at_ms,
        pending=tuple(_waiting(w) for w in pending),
        transactions=transactions,
        contacts=tuple((t, m, c) for t, m, c in contacts),
        watermark_ms=wm,
    )
