"""Run a story through the pure core (`JourneyPipeline`) and collect its `Outcome`."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from schemas import Event, decode
from streams.core.config import JourneyConfig
from streams.core.pipeline import JourneyPipeline
from streams.core.records import (
    EventRow,
    FrictionSignal,
    IdentityLink,
    MinuteAggregate,
    SessionMerge,
    SessionSummary,
)
from tests.journeys.outcome import Outcome, resolve_person
from tests.journeys.story import S, Story

NOW = datetime(2026, 12, 31, tzinfo=UTC)


def event_from_message(topic: str, value: bytes) -> Event:
    """Stories go through the real decoder, so every story also exercises the contract."""
    (result,) = decode(value, topic, now=NOW)
    assert isinstance(result, Event), result
    return result


def run_core(story: Story, config: JourneyConfig | None = None) -> tuple[Outcome, list[object]]:
    pipeline = JourneyPipeline(config)
    records: list[object] = []
    for topic, value in story.messages():
        records.extend(pipeline.process(event_from_message(topic, value)))
    records.extend(pipeline.finish())
    return outcome_from_records(records, pipeline.counters.duplicates), records


def current(records: list[object]) -> list[object]:
    """The records as storage shows them: the newest row of each event, session and signal (a
    revision writes new versions of the rows it changes), withdrawn ones left out."""
    latest: dict[tuple[str, str], object] = {}
    others: list[object] = []
    for r in records:
        if isinstance(r, EventRow):
            latest[("event", r.event_id)] = r
        elif isinstance(r, SessionSummary):
            known = latest.get(("session", r.session_id))
            if not isinstance(known, SessionSummary) or r.version >= known.version:
                latest[("session", r.session_id)] = r
        elif isinstance(r, FrictionSignal):
            latest[("signal", r.signal_id)] = r
        else:
            others.append(r)
    return [r for r in latest.values() if not getattr(r, "is_deleted", False)] + others


def outcome_from_records(records: list[object], duplicates: int) -> Outcome:
    records = current(records)
    links = [r for r in records if isinstance(r, IdentityLink)]
    link_rows = [(r.device_id, r.customer_id, r.linked_at_ms, r.retro_window_ms) for r in links]
    events = [r for r in records if isinstance(r, EventRow)]
    minutes: dict[tuple[int, str, str, str, str], MinuteAggregate] = {}
    for r in records:  # the newest version of each row, as storage keeps it
        if isinstance(r, MinuteAggregate):
            row_key = (r.minute_ms, r.channel, r.metric, r.key, r.shard)
            if row_key not in minutes or minutes[row_key].version < r.version:
                minutes[row_key] = r
    return Outcome(
        sessions=[
            S(r.person_id, r.events, r.channels, r.bounced, r.converted)
            for r in records
            if isinstance(r, SessionSummary)
        ],
        signals=Counter(r.type for r in records if isinstance(r, FrictionSignal)),
        links=[(r.device_id, r.customer_id) for r in links],
        late=sum(1 for r in events if r.late),
        duplicates=duplicates,
        merges=sum(1 for r in records if isinstance(r, SessionMerge)),
        resolved_persons={
            r.event_id: resolve_person(
                r.customer_id, r.device_id, r.person_id, r.occurred_at_ms, link_rows
            )
            for r in events
        },
        duplicate_transactions=sum(1 for r in events if r.duplicate_transaction),
        revenue=sum(a.amount for a in minutes.values() if a.metric == "revenue"),
        conversions=sum(a.count for a in minutes.values() if a.metric == "conversions"),
        session_revenue=sum(r.revenue for r in records if isinstance(r, SessionSummary)),
    )
