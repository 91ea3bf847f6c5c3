"""Per-minute aggregates against an independent computation (by hand, and over simulated input).

The aggregates are read the way storage reads them: the newest `version` of each
(minute, channel, metric, key) row wins, and rows of one shard are complete per minute.
"""

from __future__ import annotations

from collections import defaultdict

import orjson
import pytest

from schemas import Event, decode
from streams.core.aggregates import BY_DEVICE_EVENTS
from streams.core.config import MINUTE_MS
from streams.core.pipeline import JourneyPipeline
from streams.core.records import EventRow, FrictionSignal, MinuteAggregate, SessionSummary
from streams.simulate import SimulationConfig, generate
from tests.journeys.core_runner import current, run_core
from tests.journeys.stories import STORIES
from tests.journeys.story import BASE

pytestmark = pytest.mark.unit

Key = tuple[int, str, str, str]


def newest(records: list[object]) -> dict[Key, tuple[int, float]]:
    """Storage's view of the aggregates: per key, the row with the highest version."""
    best: dict[Key, MinuteAggregate] = {}
    for r in records:
        if isinstance(r, MinuteAggregate):
            key = (r.minute_ms, r.channel, r.metric, r.key)
            if key not in best or r.version > best[key].version:
                best[key] = r
    return {k: (r.count, round(r.amount, 2)) for k, r in best.items()}


def test_a_story_by_hand() -> None:
    story = next(
        s for s in STORIES if s.name == "abandoned_web_checkout_bought_in_store_20_min_later"
    )
    _, records = run_core(story)
    t0 = int(BASE.timestamp() * 1000)

    def minute(m: int) -> int:
        return t0 + m * MINUTE_MS

    assert newest(records) == {
        (minute(0), "web", "events", "add_to_cart"): (1, 0.0),
        (minute(0), "web", "events", "begin_checkout"): (1, 0.0),
        (minute(1), "web", "events", "add_shipping_info"): (1, 0.0),
        (minute(21), "store", "events", "purchase"): (1, 0.0),
        (minute(21), "store", "conversions", ""): (1, 0.0),
        (minute(21), "store", "revenue", ""): (1, 50.0),
        (minute(0), "omni", "sessions_started", ""): (1, 0.0),
        (minute(21), "omni", "sessions_ended", ""): (1, 0.0),
        (minute(21), "store", "friction", "channel_switch"): (1, 0.0),
        # split by device type for the spike detector: the web events name none, the till does
        (minute(0), "omni", "sessions_started_by_device", "pos"): (1, 0.0),
        (minute(21), "store", "friction_by_device", "channel_switch@pos"): (1, 0.0),
    }


def test_simulated_traffic_against_an_independent_count() -> None:
    config = SimulationConfig(customers=150, days=2, seed=11, malformed_rate=0.0)
    pipeline = JourneyPipeline()
    records: list[object] = []
    inputs: list[Event] = []
    for msg in generate(config):
        assert not isinstance(msg.payload, bytes)
        for result in decode(orjson.dumps(msg.payload), msg.topic):
            assert isinstance(result, Event)
            inputs.append(result)
            records.extend(pipeline.process(result, 0))
    records.extend(pipeline.finish())
    # A real test: copies, and events behind the watermark (flagged late or revising a session).
    behind = pipeline.counters.late + sum(pipeline.counters.revisions.values())
    assert pipeline.counters.duplicates > 0 and behind > 0
    assert pipeline.aggregates.dropped == 0

    expected: dict[Key, list[float]] = defaultdict(lambda: [0, 0.0])

    def add(ts: int, channel: str, metric: str, key: str = "", amount: float = 0.0) -> None:
        bucket = expected[(ts - ts % MINUTE_MS, channel, metric, key)]
        bucket[0] += 1
        bucket[1] += amount

    # Events, conversions and revenue straight from the input, each event id once.
    seen: set[str] = set()
    for ev in inputs:
        if ev.event_id in seen:
            continue
        seen.add(ev.event_id)
        add(ev.ts_ms, ev.channel.value, "events", ev.event_type)
        if ev.device_type and ev.event_type in BY_DEVICE_EVENTS:
            add(ev.ts_ms, ev.channel.value, "events_by_device", f"{ev.event_type}@{ev.device_type}")
        if ev.event_type == "purchase":
            add(ev.ts_ms, ev.channel.value, "conversions")
            add(ev.ts_ms, ev.channel.value, "revenue", amount=float(ev.properties["value"]))
    # Lateness, sessions and friction are the core's conclusions: counted from its records as
    # storage shows them (the newest version of each row; withdrawn ones left out).
    for r in current(records):
        if isinstance(r, EventRow) and r.late:
            add(r.occurred_at_ms, r.channel, "late_events")
        elif isinstance(r, SessionSummary):
            channel = r.channels[0] if len(r.channels) == 1 else "omni"
            add(r.started_at_ms, channel, "sessions_started")
            add(r.ended_at_ms, channel, "sessions_ended")
            if r.device_type:
                add(r.started_at_ms, channel, "sessions_started_by_device", r.device_type)
        elif isinstance(r, FrictionSignal):
            add(r.occurred_at_ms, r.channel, "friction", r.type)
            if r.device_type:
                add(r.occurred_at_ms, r.channel, "friction_by_device", f"{r.type}@{r.device_type}")
    want = {k: (int(c), round(a, 2)) for k, (c, a) in expected.items()}
    got = newest(records)
    assert got.keys() == want.keys()
    assert {k: v for k, v in got.items() if v != want[k]} == {}
