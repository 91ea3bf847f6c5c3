"""Properties of the core over generated journeys (hypothesis)."""

from __future__ import annotations

import pickle
from dataclasses import fields, is_dataclass
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from schemas import Channel, Event
from streams.core.codec import device_from_dict, device_to_dict, person_from_dict, person_to_dict
from streams.core.journey import PersonState
from streams.core.pipeline import JourneyPipeline
from streams.core.records import EventRow, FrictionSignal, SessionSummary
from streams.core.session import session_from_dict, session_to_dict

pytestmark = pytest.mark.unit

BASE = datetime(2026, 11, 2, tzinfo=UTC)
TYPES = [
    "page_view",
    "screen_view",
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
    "login",
    "store_visit",
    "custom_thing",
]


@st.composite
def events(draw: st.DrawFn, span_s: int = 3 * 24 * 3600) -> Event:
    event_type = draw(st.sampled_from(TYPES))
    channel = draw(st.sampled_from(list(Channel)))
    device = draw(st.sampled_from(["d1", "d2", "d3", None]))
    customer = draw(st.sampled_from(["c1", "c2", None]))
    if device is None and channel is not Channel.STORE:
        device = "d1"
    if event_type == "login":
        device, customer = device or "d1", customer or "c1"
    props = {
        "page": draw(st.sampled_from(["/a", "/b", "/c"])),
        "screen": "s",
        "element": draw(st.sampled_from(["x", "y"])),
        "results_count": draw(st.integers(0, 2)),
        "search_term": "q",
        "medium": draw(st.sampled_from(["chat", "phone"])),
        "transaction_id": "t",
        "value": 10.0,
        "currency": "EUR",
        "item_id": "i",
        "description": "e",
        "store_id": "s1",
    }
    seconds = draw(st.integers(0, span_s))
    return Event(
        event_id=f"e{draw(st.integers(0, 400))}",
        event_type=event_type,
        occurred_at=BASE + timedelta(seconds=seconds),
        channel=channel,
        device_id=device,
        customer_id=customer,
        properties=props,
    )


def _run(evs: list[Event]) -> list[object]:
    """The records as storage shows them: the newest row of each event, session and signal
    (revisions write new versions), withdrawn ones left out."""
    pipeline = JourneyPipeline()
    out: list[object] = []
    for ev in evs:
        out.extend(pipeline.process(ev, received_at_ms=0))
    out.extend(pipeline.finish())
    assert pipeline.persons == {} or all(p.session is None for p in pipeline.persons.values())
    return current(out)


def current(records: list[object]) -> list[object]:
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
    kept = [r for r in latest.values() if not getattr(r, "is_deleted", False)]
    return kept + others


def _summary(records: list[object]) -> tuple[list[SessionSummary], list[FrictionSignal]]:
    sessions = sorted(
        (r for r in records if isinstance(r, SessionSummary)), key=lambda s: s.session_id
    )
    signals = sorted(
        (r for r in records if isinstance(r, FrictionSignal)), key=lambda s: s.signal_id
    )
    return list(sessions), list(signals)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events(), max_size=60, unique_by=lambda e: e.event_id))
def test_core_never_raises_and_closes_everything(evs: list[Event]) -> None:
    records = _run(evs)
    sessions, _ = _summary(records)
    rows = [r for r in records if isinstance(r, EventRow)]
    distinct_ids = {e.event_id for e in evs}
    assert len(rows) <= len(distinct_ids)
    assert sum(s.events for s in sessions) <= len(rows)


@settings(max_examples=100, deadline=None)
@given(st.lists(events(), max_size=40, unique_by=lambda e: e.event_id))
def test_same_input_same_sessions_and_signals(evs: list[Event]) -> None:
    assert _summary(_run(evs)) == _summary(_run(evs))


@settings(max_examples=100, deadline=None)
@given(st.lists(events(), max_size=40, unique_by=lambda e: e.event_id))
def test_each_event_sent_twice_is_processed_once(evs: list[Event]) -> None:
    """A producer retry re-sends an event right away: sessions and signals are as if sent once."""
    assert _summary(_run([e for e in evs for _ in (1, 2)])) == _summary(_run(evs))


@settings(max_examples=100, deadline=None)
@given(st.lists(events(span_s=3600), max_size=40, unique_by=lambda e: e.event_id))
def test_replaying_a_stretch_within_the_dedup_horizon_changes_nothing(evs: list[Event]) -> None:
    """Re-delivery of a whole stretch (a consumer restarting from an old offset) within the
    dedup horizon leaves sessions and signals unchanged; storage dedups beyond it."""
    assert _summary(_run(evs + evs)) == _summary(_run(evs))


def assert_plain(value: object, path: str = "state") -> None:
    """Primitives, containers and slotted dataclasses of them: no pydantic model anywhere."""
    assert not isinstance(value, BaseModel), path
    if isinstance(value, str | bytes | int | float | bool | None):
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            assert_plain(item, f"{path}[{i}]")
    elif isinstance(value, dict):
        for k, item in value.items():
            assert_plain(k, f"{path} key")
            assert_plain(item, f"{path}[{k!r}]")
    else:
        assert is_dataclass(value), (path, type(value))
        for f in fields(value):
            assert_plain(getattr(value, f.name), f"{path}.{f.name}")


@settings(max_examples=60, deadline=None)
@given(st.lists(events(), min_size=1, max_size=40, unique_by=lambda e: e.event_id))
def test_state_is_plain_serialisable_data(evs: list[Event]) -> None:
    pipeline = JourneyPipeline()
    for ev in evs:
        pipeline.process(ev, received_at_ms=0)
    for person in pipeline.persons.values():
        assert isinstance(person, PersonState)
        assert_plain(person)
        assert pickle.loads(pickle.dumps(person)) == person
        if person.session is not None:
            assert session_from_dict(session_to_dict(person.session)) == person.session
        wire = orjson.loads(orjson.dumps(person_to_dict(person)))
        assert person_from_dict(wire) == person
    for device in pipeline.devices.values():
        assert device_from_dict(orjson.loads(orjson.dumps(device_to_dict(device)))) == device
