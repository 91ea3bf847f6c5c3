"""The changelog's compact form of a person (streams/core/wire.py): exact round trips, the JSON
of earlier versions still read, other formats refused, and fewer bytes than the JSON form."""

from __future__ import annotations

import pickle

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import Event, decode
from streams.core import wire
from streams.core.codec import person_to_dict
from streams.core.config import JourneyConfig
from streams.core.person import PersonState
from streams.core.pipeline import JourneyPipeline
from streams.simulate import SimulationConfig, generate
from tests.core.test_core_properties import events


def _simulated_persons(n_events: int, every: int) -> list[PersonState]:
    """Copies of every person, taken every `every` events of a simulated run: open sessions,
    waiting events, histories, closed sessions, checkout attempts, hand-overs."""
    pipeline = JourneyPipeline(JourneyConfig())
    seen = 0
    taken: list[PersonState] = []
    for msg in generate(SimulationConfig(customers=150, days=3, seed=5, malformed_rate=0.0)):
        if isinstance(msg.payload, bytes):
            continue
        for result in decode(orjson.dumps(msg.payload), msg.topic):
            if isinstance(result, Event):
                pipeline.process(result, received_at_ms=seen)
                seen += 1
                if seen % every == 0:
                    taken += pickle.loads(pickle.dumps(list(pipeline.persons.values())))
        if seen >= n_events:
            break
    return taken


@pytest.fixture(scope="module")
def simulated() -> list[PersonState]:
    return _simulated_persons(6000, every=700)


def test_simulated_persons_round_trip_exactly(simulated: list[PersonState]) -> None:
    persons = simulated
    assert any(p.checkout is not None for p in persons) and any(p.handed for p in persons)
    assert any(p.history for p in persons) and any(p.pending for p in persons)
    assert any(p.session is not None for p in persons) and any(p.recent for p in persons)
    for person in persons:
        restored = wire.person_from_bytes(wire.person_to_bytes(person))
        assert restored == person
        # and once more: what a restore writes again is byte for byte what was restored
        assert wire.person_to_bytes(restored) == wire.person_to_bytes(person)


def test_compact_form_is_much_smaller_than_json(simulated: list[PersonState]) -> None:
    persons = simulated
    compact = sum(len(wire.person_to_bytes(p)) for p in persons)
    as_json = sum(len(orjson.dumps(person_to_dict(p))) for p in persons)
    assert compact * 2 < as_json, (compact, as_json)


def test_json_of_earlier_versions_is_read(simulated: list[PersonState]) -> None:
    for person in simulated[::5]:
        old = orjson.dumps(person_to_dict(person))
        assert wire.person_from_bytes(old) == person


def test_other_formats_are_refused() -> None:
    with pytest.raises(wire.WireFormatError, match="format 3"):
        wire.person_from_bytes(wire.encode([3, "p"]))
    with pytest.raises(wire.WireFormatError, match="format 'str'"):
        wire.person_from_plain("p")
    with pytest.raises(wire.WireFormatError, match="empty"):
        wire.decode(b"")
    with pytest.raises(wire.WireFormatError, match="MessagePack"):
        wire.decode(b"\x92\x01")  # an array of two with one element


def test_plain_values_round_trip() -> None:
    rows = [["web", "views", "", 3, 12.5, 2, True], ["app", "revenue", "EUR", 1, 0.1, 1, False]]
    assert wire.decode(wire.encode(rows)) == rows
    assert wire.decode(orjson.dumps(rows)) == rows


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events(), min_size=1, max_size=40, unique_by=lambda e: e.event_id))
def test_any_state_round_trips(evs: list[Event]) -> None:
    pipeline = JourneyPipeline()
    for i, ev in enumerate(evs):
        pipeline.process(ev, received_at_ms=i)
        for person in pipeline.persons.values():
            assert wire.person_from_bytes(wire.person_to_bytes(person)) == person
