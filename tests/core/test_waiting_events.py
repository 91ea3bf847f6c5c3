"""Events waiting for the watermark are plain tuples; they become Events again when applied."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from schemas import Channel, Event
from streams.core.codec import message_from_dict, message_to_dict, person_from_dict, person_to_dict
from streams.core.config import JourneyConfig
from streams.core.identity import LinkNotice, Routed
from streams.core.journey import Handover, journey_step
from streams.core.person import from_waiting, to_waiting

pytestmark = pytest.mark.unit

BASE = datetime(2026, 11, 2, 10, tzinfo=UTC)


def event(event_id: str, seconds: float, **props: object) -> Event:
    return Event(
        event_id=event_id,
        event_type="purchase",
        occurred_at=BASE + timedelta(seconds=seconds, microseconds=123_000),
        channel=Channel.STORE,
        device_id=None,
        customer_id="c1",
        properties={"transaction_id": "t", "value": 9.5, "currency": "EUR", **props},
    )


def test_waiting_tuple_rebuilds_the_same_event_and_routing() -> None:
    msg = Routed("c1", event("e1", 3, device_type="pos"), 17, 21, "store-events/1", 65537)
    waiting = to_waiting(msg)
    assert all(not hasattr(part, "model_dump") for part in waiting)
    rebuilt = from_waiting(waiting, "c1")
    assert rebuilt == msg
    assert (
        rebuilt.event.ts_ms == msg.event.ts_ms
        and rebuilt.event.occurred_at == msg.event.occurred_at
    )
    assert rebuilt.event.device_type == "pos"


def test_pending_and_handover_hold_tuples_and_round_trip_through_the_codec() -> None:
    config = JourneyConfig()
    first, later = event("e1", 0), event("e2", 5)
    state, _ = journey_step(None, Routed("anon:w1", later, later.ts_ms - 1, 0, "s/0", 2), config)
    state, _ = journey_step(state, Routed("anon:w1", first, first.ts_ms - 1, 0, "s/0", 3), config)
    assert state is not None
    assert [w[1] for w in state.pending] == ["e1", "e2"]  # event-time order, not arrival
    assert all(isinstance(w, tuple) for w in state.pending)
    wire = orjson.loads(orjson.dumps(person_to_dict(state)))
    assert person_from_dict(wire) == state
    # Linked just before both (an event up to the login goes over inside the session).
    _, out = journey_step(state, LinkNotice("anon:w1", "c1", "w1", first.ts_ms - 1), config)
    (handover,) = [o for o in out if isinstance(o, Handover)]
    assert [w[1] for w in handover.pending] == ["e1", "e2"]
    assert message_from_dict(orjson.loads(orjson.dumps(message_to_dict(handover)))) == handover
