"""The embedded journey runtime keeps the `JourneyLogic` contract (streams/core/runtime.py).

mypy checks the structural match (the annotated assignment below); the test checks the
behaviour the contract promises: a restored snapshot carries on exactly where it stopped.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from schemas import Channel, Event
from streams.core.pipeline import JourneyPipeline
from streams.core.records import SessionSummary
from streams.core.runtime import JourneyLogic

pytestmark = pytest.mark.unit

BASE = datetime(2026, 11, 2, 10, tzinfo=UTC)


def view(i: int, minutes: float, device: str = "w1") -> Event:
    return Event(
        event_id=f"e{i}",
        event_type="page_view",
        occurred_at=BASE + timedelta(minutes=minutes),
        channel=Channel.WEB,
        device_id=device,
        properties={"page": f"/p{i}"},
    )


def test_a_restored_snapshot_carries_on_where_it_stopped() -> None:
    events = [view(0, 0), view(1, 5), view(2, 12), view(3, 50, "w2"), view(4, 90)]
    logic: JourneyLogic = JourneyPipeline()
    for ev in events[:3]:
        logic.process(ev, received_at_ms=0)
    assert logic.next_deadline() is not None
    shown = logic.provisional()
    assert [r.is_open for r in shown if isinstance(r, SessionSummary)] == [True]
    saved = orjson.loads(orjson.dumps(logic.snapshot()))  # plain data, as stored
    restored = JourneyPipeline.restore(saved)
    assert orjson.loads(orjson.dumps(restored.snapshot())) == saved
    rest = [r for ev in events[3:] for r in restored.process(ev, received_at_ms=0)]
    rest += restored.advance(2**62)
    whole = JourneyPipeline()
    for ev in events[:3]:
        whole.process(ev, received_at_ms=0)
    whole.provisional()
    expected = [r for ev in events[3:] for r in whole.process(ev, received_at_ms=0)]
    expected += whole.advance(2**62)
    assert rest == expected
