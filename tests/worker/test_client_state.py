"""The worker's reads of the Kafka client's own state (streams/worker/client_state.py) against
a real aiokafka consumer object, without a broker: they use private attributes, and an aiokafka
or Faust upgrade that moves them must fail here rather than in a stuck recovery."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP

from streams.worker.client_state import client_position, report_recovery

pytestmark = pytest.mark.unit

CHANGELOG = TP("parcours-x-persons-changelog", 2)
INPUT = TP("clickstream", 1)


async def _client() -> Any:
    """A consumer never started (no broker): its subscription state is real; its fetcher,
    made at start, is stood in for by the two fields the report reads."""
    client = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:9")
    client._subscription.assign_from_user(
        {TopicPartition(INPUT.topic, INPUT.partition), TopicPartition(*CHANGELOG)}
    )
    client._fetcher = SimpleNamespace(_records={}, _in_flight=set())
    client._closed = True  # nothing to close: it never started
    return client


def _seek(client: Any, tp: TP, offset: int) -> None:
    client._subscription.seek(TopicPartition(tp.topic, tp.partition), offset)


def _consumer(client: Any, queued: int = 0) -> Any:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(queued):
        queue.put_nowait(i)
    thread = SimpleNamespace(_consumer=client, method_queue=SimpleNamespace(_queue=queue))
    return SimpleNamespace(_thread=thread)


def test_a_position_is_read_without_waiting_for_it() -> None:
    async def scenario() -> tuple[int | None, int | None, int | None]:
        client = await _client()
        consumer = _consumer(client)
        before = client_position(consumer, INPUT)
        _seek(client, INPUT, 42)
        after = client_position(consumer, INPUT)
        unassigned = client_position(consumer, TP("app-events", 0))
        return before, after, unassigned

    assert asyncio.run(scenario()) == (None, 42, None)


def test_a_long_recovery_is_reported_with_the_clients_view(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("test.recovery")

    async def scenario() -> None:
        client = await _client()
        _seek(client, CHANGELOG, 7)
        recovery = SimpleNamespace(
            _recovery_started_at=100.0,
            active_tps={CHANGELOG},
            active_highwaters={CHANGELOG: 30},
            active_offsets={CHANGELOG: 6},
        )
        app = SimpleNamespace(
            in_recovery=True,
            tables=SimpleNamespace(_recovery=recovery),
            consumer=_consumer(client, queued=3),
        )
        report_recovery(app, 130.0, log)  # half a minute: nothing yet
        assert not caplog.records
        report_recovery(app, 170.0, log)
        report_recovery(app, 180.0, log)  # once a minute
        app.in_recovery = False
        report_recovery(app, 300.0, log)

    with caplog.at_level(logging.WARNING, logger="test.recovery"):
        asyncio.run(scenario())
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "table recovery running for 70 s" in message
    assert "calls queued: 3" in message
    assert "parcours-x-persons-changelog/2: need 30, have 6, position 7" in message
    assert "paused False, buffered False" in message
