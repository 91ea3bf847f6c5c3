"""RewindingConsumer (streams/worker/faust_internals.py): what it puts back after a fetch, on a real
aiokafka consumer object's state (no broker). The Kafka test tests/kafka/test_recovery_faults.py
shows it at work in a worker whose recovery loses records."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from streams import metrics
from streams.core.config import JourneyConfig
from streams.settings import Settings, StreamSettings
from streams.worker.app import create_app
from streams.worker.faust_internals import RewindingConsumer, client_position
from tests.worker.test_client_state import CHANGELOG, INPUT, _client, _consumer, _seek

pytestmark = pytest.mark.unit


def _fetched(tp: Any, first: int, last: int) -> list[Any]:
    return [SimpleNamespace(offset=o) for o in range(first, last + 1)]


def test_records_not_handed_over_are_fetched_again() -> None:
    counter = metrics.RECORDS_PUT_BACK.labels(CHANGELOG.topic)
    before = counter._value.get()

    async def scenario() -> tuple[int | None, int | None]:
        client = await _client()
        consumer = _consumer(client)
        _seek(client, CHANGELOG, 23)  # the fetch handed out 0..22
        _seek(client, INPUT, 110)  # and 100..109, all handed over
        fetched = {CHANGELOG: _fetched(CHANGELOG, 0, 22), INPUT: _fetched(INPUT, 100, 109)}
        RewindingConsumer._rewind(consumer, fetched, {INPUT: 10, CHANGELOG: 5})
        return client_position(consumer, CHANGELOG), client_position(consumer, INPUT)

    assert asyncio.run(scenario()) == (5, 110)
    assert counter._value.get() - before == 18


def test_a_partition_sought_since_is_left_where_it_was_sought() -> None:
    async def scenario() -> int | None:
        client = await _client()
        consumer = _consumer(client)
        _seek(client, CHANGELOG, 0)  # recovery sought it to its start after the fetch
        RewindingConsumer._rewind(consumer, {CHANGELOG: _fetched(CHANGELOG, 7, 22)}, {})
        return client_position(consumer, CHANGELOG)

    assert asyncio.run(scenario()) == 0


def test_resuming_the_flow_keeps_the_streams_records_and_clears_the_changelog_queue() -> None:
    """Records a stream was handed while Faust sought its partitions must survive the resume
    that follows (the client is past them); a revocation still clears every queue."""

    async def scenario() -> list[tuple[int, int]]:
        app = create_app(Settings(kafka_bootstrap="127.0.0.1:9"), StreamSettings(), JourneyConfig())
        stream_queue = app.FlowControlQueue(maxsize=10, clear_on_resume=True)
        changelog_queue = app.tables.changelog_queue
        sizes = []
        for _ in range(2):  # twice: the resume is patched for good, not for one call
            stream_queue.put_nowait("record")
            changelog_queue.put_nowait("changelog record")
            app.flow_control.resume()
            sizes.append((stream_queue.qsize(), changelog_queue.qsize()))
        app.flow_control.suspend()
        app.flow_control.clear()  # partitions revoked
        sizes.append((stream_queue.qsize(), changelog_queue.qsize()))
        return sizes

    assert asyncio.run(scenario()) == [(1, 0), (2, 0), (0, 0)]
