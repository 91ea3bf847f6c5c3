"""Late data revises: for any arrival order within the revision horizon, the tables read as if
the events had arrived in event-time order (streams/core/revise.py), apart from nothing being
flagged late.

People name themselves on every event (a customer, or one anonymous device that never logs
in). Logins arriving late are covered by tests/runs/test_per_day_files.py (per-day files) and
the journeys stories; an arbitrary arrival order around a login is not yet exact in every case
(see the README's revisions section).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import Channel, Event
from streams.core.pipeline import JourneyPipeline
from streams.core.records import EventRow, FrictionSignal, SessionSummary

pytestmark = pytest.mark.unit

BASE = datetime(2026, 11, 2, tzinfo=UTC)
TYPES = [
    "page_view",
    "view_item",
    "add_to_cart",
    "view_cart",
    "begin_checkout",
    "add_shipping_info",
    "add_payment_info",
    "purchase",
    "payment_error",
    "search",
    "click",
    "exception",
    "support_contact",
    "custom_thing",
]
#: (device, customer): customers on their own devices, and anonymous devices.
PEOPLE = [("d1", "c1"), ("d2", "c2"), (None, "c3"), ("d4", None), ("d5", None)]


@st.composite
def journey(
    draw: st.DrawFn, people: list[tuple[str | None, str | None]] = PEOPLE
) -> tuple[list[Event], list[int]]:
    """Events of a few people over a day, and a delay for each (up to 20 h)."""
    count = draw(st.integers(1, 40))
    evs: list[Event] = []
    delays: list[int] = []
    for i in range(count):
        device, customer = draw(st.sampled_from(people))
        channel = Channel.STORE if device is None else draw(st.sampled_from(list(Channel)))
        seconds = draw(st.integers(0, 8 * 3600))
        props: dict[str, Any] = {
            "page": draw(st.sampled_from(["/a", "/b", "/c"])),
            "element": draw(st.sampled_from(["x", "y"])),
            "results_count": draw(st.integers(0, 1)),
            "search_term": "q",
            "medium": draw(st.sampled_from(["chat", "phone"])),
            "transaction_id": f"t{i}",
            "value": 10.0,
            "currency": "EUR",
            "item_id": "i",
            "description": "e",
        }
        evs.append(
            Event(
                event_id=f"e{i}",
                event_type=draw(st.sampled_from(TYPES)),
                occurred_at=BASE + timedelta(seconds=seconds),
                channel=channel,
                device_id=device,
                customer_id=customer,
                properties=props,
            )
        )
        delays.append(draw(st.sampled_from([0, 0, 0, 60, 600, 3600, 5 * 3600, 20 * 3600])))
    return evs, delays


def tables(evs: list[Event]) -> dict[str, Any]:
    pipeline = JourneyPipeline()
    records: list[object] = []
    for ev in evs:
        records.extend(pipeline.process(ev, received_at_ms=0))
    records.extend(pipeline.finish())
    events: dict[str, Any] = {}
    sessions: dict[str, SessionSummary] = {}
    signals: dict[str, FrictionSignal] = {}
    for r in records:
        if isinstance(r, EventRow):
            events[r.event_id] = (r.person_id, r.session_id)
        elif isinstance(r, SessionSummary):
            known = sessions.get(r.session_id)
            if known is None or r.version >= known.version:
                sessions[r.session_id] = r
        elif isinstance(r, FrictionSignal):
            signals[r.signal_id] = r
    return {
        "events": events,
        "sessions": {k: _session(v) for k, v in sessions.items() if not v.is_deleted},
        "signals": {k: (v.type, v.session_id) for k, v in signals.items() if not v.is_deleted},
    }


def _session(s: SessionSummary) -> tuple[Any, ...]:
    return (s.person_id, s.events, s.channels, s.bounced, s.converted, s.revenue, s.friction_count)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(journey())
def test_any_arrival_order_within_the_horizon_reads_as_time_order(
    data: tuple[list[Event], list[int]],
) -> None:
    evs, delays = data
    in_time_order = sorted(evs, key=lambda e: (e.ts_ms, e.event_id))
    arrival = [
        e for _, e in sorted(zip(delays, evs, strict=True), key=lambda p: p[1].ts_ms + p[0] * 1000)
    ]
    assert tables(arrival) == tables(in_time_order)
