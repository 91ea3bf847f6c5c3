"""Rows of a rejection: `rejected_events` (one per rejection) and `rejected_messages` (one per
message, its bytes written as bytes), and their stable ids.

The ids hash where a message came from (source, position, topic) and its bytes, so a replay of
the same input gives the same ids and ReplacingMergeTree keeps one copy; a rejection's id adds
its index in the message. Text fields come from hostile input and the file system (a file name
may hold undecodable bytes as surrogate escapes): `_text` makes them encodable.
"""

from __future__ import annotations

import hashlib
from typing import Any

from streams.sinks.base import RejectedInput


def message_id(item: RejectedInput) -> str:
    """The stored id of a rejected message: where it came from and its bytes."""
    r = item.rejection
    key = f"{item.source}\x1f{item.position}\x1f{r.topic}\x1f".encode("utf-8", "surrogatepass")
    key += r.raw  # a file name may hold undecodable bytes (surrogate escapes): hash them too
    return hashlib.blake2b(key, digest_size=12).hexdigest()


def rejection_id(item: RejectedInput, of_message: str | None = None) -> str:
    """The stored id of one rejection: its message and its index in it (stable on replay)."""
    mid = of_message or message_id(item)
    return hashlib.blake2b(f"{mid}\x1f{item.rejection.index}".encode(), digest_size=12).hexdigest()


def _text(value: str) -> str:
    """Text that ClickHouse's client can encode (a lone surrogate cannot be)."""
    if value.isascii():
        return value
    return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def rejection_row(item: RejectedInput, mid: str) -> tuple[tuple[Any, ...], str]:
    """The original bytes are not in this row but in `rejected_messages` (once per message)."""
    r = item.rejection
    rid = rejection_id(item, mid)
    return (
        rid,
        item.received_at_ms,
        _text(r.topic),
        str(r.reason),
        _text(r.message),
        _text(r.field or ""),
        _text(r.event_id or ""),
        b"",
        r.index,
        _text(item.source),
        item.position,
        mid,
    ), rid


def message_row(item: RejectedInput, mid: str) -> tuple[Any, ...]:
    """The message's bytes, written as bytes: nothing is decoded or re-encoded."""
    r = item.rejection
    return (mid, item.received_at_ms, _text(r.topic), _text(item.source), item.position, r.raw)
