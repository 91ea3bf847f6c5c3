"""A person's recently closed sessions, packed in one `bytes`: (session id, start, end) each.

Why bytes: every person whose session closed is kept for the late horizon (24 h) only so that a
late event finds the session it belongs to, and those persons outnumber open sessions many
times over. As a tuple of `(id, start, end)` tuples one closed session cost about 200 bytes (a
3-tuple, a 67-byte id string and two 32-byte ints); packed it costs 26, plus 33 per person.

Layout: records sorted by end (so the first one is the next to forget), each `end (8 bytes),
start (8 bytes), id marker (2 bytes)` then the id. Ids the core names (`identifiers.
session_id_for`: "s-" and 16 lowercase hex digits) are stored as their 8-byte number, marker
0xFFFF; any other id (older versions, tests) is stored as its UTF-8 bytes, the marker being
their length. A person keeps a handful of closed sessions at most
(`JourneyConfig.recent_sessions_kept`), so reading them all is cheap; it happens when a session
closes, when one is forgotten, and for late events.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

Closed = tuple[str, int, int]

EMPTY = b""
_HEAD = struct.Struct(">qqH")
_NUMBER = struct.Struct(">Q")
_NAMED = 0xFFFF


def _id_bytes(session_id: str) -> tuple[int, bytes]:
    """(marker, payload) of a session id."""
    if len(session_id) == 18 and session_id.startswith("s-"):
        digits = session_id[2:]
        try:
            number = int(digits, 16)
        except ValueError:
            number = -1
        if number >= 0 and format(number, "016x") == digits:  # exactly what session_id_for makes
            return _NAMED, _NUMBER.pack(number)
    raw = session_id.encode()
    if len(raw) >= _NAMED:
        raise ValueError(f"session id of {len(raw)} bytes")
    return len(raw), raw


def pack(sessions: Iterable[Closed]) -> bytes:
    """Closed sessions, already sorted by end, as bytes."""
    parts: list[bytes] = []
    for session_id, started, ended in sessions:
        marker, payload = _id_bytes(session_id)
        parts.append(_HEAD.pack(ended, started, marker))
        parts.append(payload)
    return b"".join(parts)


def entries(packed: bytes) -> tuple[Closed, ...]:
    """The closed sessions, sorted by end."""
    out: list[Closed] = []
    at, size = 0, len(packed)
    while at < size:
        ended, started, marker = _HEAD.unpack_from(packed, at)
        at += _HEAD.size
        if marker == _NAMED:
            session_id = "s-" + format(_NUMBER.unpack_from(packed, at)[0], "016x")
            at += _NUMBER.size
        else:
            session_id = packed[at : at + marker].decode()
            at += marker
        out.append((session_id, started, ended))
    return tuple(out)


def oldest_end(packed: bytes) -> int:
    """End of the first closed session (the next to forget); `packed` must not be empty."""
    ended: int = _HEAD.unpack_from(packed, 0)[0]
    return ended


def add(packed: bytes, session: Closed, keep: int) -> bytes:
    """`packed` with `session` added, kept sorted by end, the `keep` latest-ending only."""
    closed = (*entries(packed), session)
    if len(closed) > 1 and closed[-2][2] > session[2]:
        closed = tuple(sorted(closed, key=_ended))
    return pack(closed[-keep:])


def forget_before(packed: bytes, horizon: int) -> bytes:
    """`packed` without the sessions that ended before `horizon`."""
    if not packed or oldest_end(packed) >= horizon:
        return packed
    return pack(c for c in entries(packed) if c[2] >= horizon)


def _ended(closed: Closed) -> int:
    return closed[2]
