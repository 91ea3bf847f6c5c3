"""Deterministic identifiers: the same input always yields the same ids.

Intuition: an id is a short hash of the facts that define the thing (a session is defined by its
person and the event that opened it; a signal by its type, session and the event that raised it).
Replaying a stream therefore regenerates identical ids, which is what lets storage deduplicate
re-inserted rows instead of counting them twice.
"""

from __future__ import annotations

from hashlib import blake2b

_SEP = b"\x1f"


def stable_hash64(*parts: str) -> int:
    """A 64-bit hash stable across processes and machines (unlike Python's salted `hash`)."""
    h = blake2b(digest_size=8)
    for part in parts:
        h.update(part.encode())
        h.update(_SEP)
    return int.from_bytes(h.digest(), "big")


def session_id_for(first_event_id: str, first_ts_ms: int) -> str:
    """A session is named after the event that opened it (event ids are unique), not after its
    person: an anonymous visit that turns out to be a customer's keeps the same id either way."""
    return "s-" + format(stable_hash64(first_event_id, str(first_ts_ms)), "016x")


def signal_id_for(signal_type: str, person_id: str, anchor: str, ts_ms: int) -> str:
    return "f-" + format(stable_hash64(signal_type, person_id, anchor, str(ts_ms)), "016x")


def event_key(event_id: str) -> bytes:
    """Dedup key of an event id: the 8 bytes of `stable_hash64(event_id)`, big-endian.

    One blake2b call on the joined input (the same digest as `stable_hash64`, about twice as
    fast): it runs once per event, and keys written by older versions (as integers) still
    match (`streams.core.dedup.from_wire`).
    """
    return blake2b(event_id.encode() + _SEP, digest_size=8).digest()
