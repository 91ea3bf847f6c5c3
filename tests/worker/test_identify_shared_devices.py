"""The Faust identify stage at a shared till: no identity link, persons as in the core.

The stage calls the same `identity_step` as the embedded pipeline; this drives it in-process
(fake topics and table, no broker) to check what it *sends*: no `IdentityLink` record and no
`LinkNotice` for a till, each event routed to the person the core gives it, and a guest visit
that survives a checkpoint and restore of the device's state (the changelog's codec).
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from streams.core.codec import device_to_dict
from streams.core.config import JourneyConfig
from streams.worker.identify_stage import IdentifyStage, Wiring
from streams.worker.outbox import Outbox
from tests.journeys.core_runner import event_from_message
from tests.journeys.shared_devices import receipt, till
from tests.journeys.story import Expect, Story

pytestmark = pytest.mark.unit


class Topic:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    async def send(self, *, value: bytes, partition: int) -> None:
        self.items.extend(orjson.loads(value))


class Devices:
    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.data: dict[str, Any] = data or {}
        self.changelog: dict[str, bytes | None] = {}

    def send_changelog(self, p: int, key: str, value: bytes | None, **_: Any) -> None:
        self.changelog[key] = value


STORY = Story(
    "worker_till",
    [
        till(0, "store_visit"),  # a guest's visit starts...
        receipt(30, "c51"),  # ...a loyalty customer pays in between (ends the guest's visit)
        receipt(60),  # a guest pays: a new visit
        till(90, "payment_error", reason="declined"),  # the next guest...
        receipt(120),  # ...pays: same visit (the state was checkpointed in between)
    ],
    Expect([]),
)


def run(stage: IdentifyStage, indexes: range, journey: Topic) -> dict[str, tuple[int, str]]:
    outbox, dirty = Outbox(), {}
    messages = list(STORY.messages())
    for i in indexes:
        topic, value = messages[i]
        message = SimpleNamespace(topic=topic, partition=0, offset=i, timestamp=1.8e9, key=b"")
        stage._one(event_from_message(topic, value), message, 0, dirty, outbox)
    asyncio.run(outbox.send())
    return dirty


def test_the_identify_stage_sends_no_link_for_a_till() -> None:
    journey, records = Topic(), Topic()
    wiring = Wiring(None, journey, records, None, 4, JourneyConfig(), lambda key: 0)
    devices = Devices()
    stage = IdentifyStage(wiring, devices, {"store-events": "store-events"}, 10.0, 120.0)
    stage._write_states(run(stage, range(4), journey))
    # a restart: the device comes back from its changelog record
    restored = Devices({"till-1": orjson.loads(devices.changelog["till-1"] or b"null")})
    again = IdentifyStage(wiring, restored, {"store-events": "store-events"}, 10.0, 120.0)
    run(again, range(4, 5), journey)
    assert records.items == []
    assert {item["kind"] for item in journey.items} == {
        "event"
    }  # no "link" notice: nothing links the till
    persons = [item["person_id"] for item in journey.items]
    assert persons == [
        "anon:till-1:worker_till-0",
        "c51",
        "anon:till-1:worker_till-2",
        "anon:till-1:worker_till-3",
        "anon:till-1:worker_till-3",
    ]
    state = again.device_state("till-1")
    assert state is not None and state.linked == () and state.guest == ()
    assert "guest" not in device_to_dict(state)
