"""Dedup memory: the event ids seen within the dedup horizon, exactly, in 16 bytes each.

Why bytes: every device remembers each event id it sent for the dedup horizon (24 h), so this
memory scales with traffic, not with open sessions, and it dominates the core's state. A dict
of 64-bit key -> event time cost about 115 bytes per id (two int objects and a hash-table
slot); one immutable `bytes` of fixed-size records costs 16, and it is plain data that
serialises as one string.

Layout: records of 16 bytes, `time (8 bytes) + key (8 bytes)`, sorted by time. The time is
stored biased by 2**63, big-endian and unsigned, so comparing the bytes compares the times; the
key is `identifiers.event_key` (the first 8 bytes of a blake2b digest of the event id). Being
sorted by time makes the oldest entry the first one (the deadline the horizon needs, in O(1))
and forgetting a prefix. Events arrive nearly in time order, so insertion scans back a record
or two from the end.

Exact, not probabilistic: a lookup finds the key with `bytes.find` (C speed) and only accepts
a match that starts a record's key field, so nothing is ever dropped that was not seen (up to
the 64-bit key itself, as before). A lookup and an insertion copy or scan the device's memory:
O(ids of that device within the horizon), a few hundred bytes for a person's phone, 16 KB for
a device that sent a thousand events in a day.
"""

from __future__ import annotations

import base64
from bisect import bisect_left
from typing import Any

RECORD = 16
_TIME = 8
_BIAS = 1 << 63
EMPTY = b""


def _time_bytes(ts_ms: int) -> bytes:
    return (ts_ms + _BIAS).to_bytes(_TIME, "big")


def contains(memory: bytes, key: bytes) -> bool:
    """Whether `key` (8 bytes) is remembered."""
    at = memory.find(key)
    while at >= 0:
        if at % RECORD == _TIME:
            return True
        at = memory.find(key, at + 1)
    return False


def time_of(memory: bytes, key: bytes) -> int | None:
    """Event time at which `key` was remembered (the newest, if several times), or None."""
    newest: int | None = None
    at = memory.find(key)
    while at >= 0:
        if at % RECORD == _TIME:
            newest = int.from_bytes(memory[at - _TIME : at], "big") - _BIAS
        at = memory.find(key, at + 1)
    return newest


def remember(memory: bytes, key: bytes, ts_ms: int) -> bytes:
    """`memory` with `key` added at its event time (a new bytes object; `memory` is unchanged)."""
    time = _time_bytes(ts_ms)
    end = len(memory)
    while end and memory[end - RECORD : end - RECORD + _TIME] > time:
        end -= RECORD
    if end == len(memory):
        return memory + time + key
    return memory[:end] + time + key + memory[end:]


def union(memory: bytes, other: bytes) -> bytes:
    """`memory` with the records of `other` it lacks (both sorted by time; so is the result).

    For identity merges: what two persons remembered, the person they turned out to be
    remembers. Records are compared whole (key and time), so a key remembered at two times
    keeps both, and `time_of` reads the newest.
    """
    if not other or other == memory:
        return memory
    if not memory:
        return other
    mine = {memory[i : i + RECORD] for i in range(0, len(memory), RECORD)}
    theirs = {other[i : i + RECORD] for i in range(0, len(other), RECORD)}
    return b"".join(sorted(mine | theirs))


def oldest(memory: bytes) -> int | None:
    """Event time of the oldest entry (None when empty)."""
    return int.from_bytes(memory[:_TIME], "big") - _BIAS if memory else None


def oldest_of(memory: bytes) -> int:
    """`oldest` of a memory known not to be empty."""
    return int.from_bytes(memory[:_TIME], "big") - _BIAS


def forget_before(memory: bytes, horizon_ms: int) -> bytes:
    """`memory` without the entries older than `horizon_ms`."""
    time = _time_bytes(horizon_ms)
    if not memory or memory[:_TIME] >= time:
        return memory
    n = len(memory) // RECORD
    first = bisect_left(range(n), time, key=lambda i: memory[i * RECORD : i * RECORD + _TIME])
    return memory[first * RECORD :]


def count(memory: bytes) -> int:
    return len(memory) // RECORD


def to_wire(memory: bytes) -> str:
    """The memory as a JSON-able string (base64 of the records, as they are in memory)."""
    return base64.b64encode(memory).decode("ascii")


def from_wire(value: Any) -> bytes:
    """Inverse of `to_wire`; also reads the older form, a dict `{str(64-bit key): ts_ms}`."""
    if isinstance(value, str):
        memory = base64.b64decode(value, validate=True)
        if len(memory) % RECORD:
            raise ValueError("dedup memory: not a whole number of records")
        return memory
    memory = EMPTY
    for key, ts in value.items():
        memory = remember(memory, int(key).to_bytes(8, "big"), int(ts))
    return memory
