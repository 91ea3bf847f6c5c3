"""An in-memory sink and state store with the storage's read semantics, for tests of runs.

`tables` reads what a sink received the way the shipped queries read ClickHouse: one row per
id (ReplacingMergeTree), the newest version of a session (`FINAL`, withdrawn ones hidden), the
newest version of each per-minute total. Two inputs processed in any number of runs must read
the same as in one run.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from streams.core.records import (
    EventRow,
    FrictionSignal,
    IdentityLink,
    MinuteAggregate,
    Record,
    SessionMerge,
    SessionSummary,
)
from streams.sinks.base import FlushReport, RejectedInput


class MemorySink:
    """Keeps every record in arrival order (the order ClickHouse would insert them)."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.rejections: list[RejectedInput] = []
        self.flushes = 0

    def add(self, records: Iterable[Record]) -> None:
        self.records.extend(records)

    def add_rejections(self, rejections: Iterable[RejectedInput]) -> None:
        self.rejections.extend(rejections)

    def flush(self) -> FlushReport:
        self.flushes += 1
        return FlushReport()

    def close(self) -> None:
        self.flush()


class MemoryStore:
    """A journey state store that keeps the saved state as JSON bytes, as the table does."""

    def __init__(self) -> None:
        self.saved: bytes | None = None
        self.saves = 0

    def load(self) -> dict[str, Any] | None:
        return None if self.saved is None else dict(orjson.loads(self.saved))

    def save(self, data: dict[str, Any], format_version: int) -> int:
        self.saved = orjson.dumps(data)
        self.saves += 1
        return self.saves


def tables(records: Iterable[Record]) -> dict[str, Any]:
    """What a reader of the tables sees (received_at aside: it is the wall clock)."""
    events: dict[str, tuple[Any, ...]] = {}
    sessions: dict[str, SessionSummary] = {}
    signals: dict[str, tuple[Any, ...]] = {}
    signal_versions: dict[str, int] = {}
    links: set[tuple[Any, ...]] = set()
    merges: set[tuple[Any, ...]] = set()
    minutes: dict[tuple[Any, ...], tuple[int, int, float]] = {}
    for r in records:
        if isinstance(r, EventRow):
            events[r.event_id] = (r.person_id, r.session_id, r.occurred_at_ms, r.late)
        elif isinstance(r, SessionSummary):
            known = sessions.get(r.session_id)
            if known is None or r.version >= known.version:
                sessions[r.session_id] = r
        elif isinstance(r, FrictionSignal):
            seen_signal = signal_versions.get(r.signal_id)
            if seen_signal is None or r.version >= seen_signal:
                signal_versions[r.signal_id] = r.version
                if r.is_deleted:  # withdrawn by a revision: storage (FINAL) no longer shows it
                    signals.pop(r.signal_id, None)
                else:
                    signals[r.signal_id] = (r.type, r.person_id, r.session_id, r.occurred_at_ms)
        elif isinstance(r, IdentityLink):
            links.add((r.device_id, r.customer_id, r.linked_at_ms))
        elif isinstance(r, SessionMerge):
            merges.add((r.session_id, r.merged_into))
        elif isinstance(r, MinuteAggregate):
            key = (r.minute_ms, r.shard, r.channel, r.metric, r.key)
            seen = minutes.get(key)
            if seen is None or r.version >= seen[0]:
                minutes[key] = (r.version, r.count, r.amount)
    totals: dict[tuple[Any, ...], tuple[int, float]] = {}
    for (minute, _, channel, metric, key), (_, count, amount) in minutes.items():
        c, a = totals.get((minute, channel, metric, key), (0, 0.0))
        totals[(minute, channel, metric, key)] = (c + count, round(a + amount, 2))
    return {
        "events": events,
        "sessions": {sid: _session_view(s) for sid, s in sessions.items() if not s.is_deleted},
        "signals": signals,
        "links": links,
        "merges": merges,
        "minutes": {k: v for k, v in totals.items() if v != (0, 0.0)},
    }


def _session_view(s: SessionSummary) -> tuple[Any, ...]:
    return (
        s.person_id,
        s.started_at_ms,
        s.ended_at_ms,
        s.events,
        s.views,
        s.channels,
        s.devices,
        s.landing_page,
        s.exit_page,
        s.engaged,
        s.bounced,
        s.converted,
        s.revenue,
        s.friction_count,
        s.is_open,
    )
