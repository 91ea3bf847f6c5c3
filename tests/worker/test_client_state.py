"""The worker's reads of the Kafka client's own state (streams/worker/faust_internals.py) against
a real aiokafka consumer object, without a broker: they use private attributes, and an aiokafka
or Faust upgrade that moves them must fail here rather than in a stuck recovery."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP

from streams.worker.faust_internals import client_position, recovery_view, rewind_if_unmoved

pytestmark = pytest.mark.unit

CHANGELOG = TP("parcours-x-persons-changelog", 2)
INPUT = TP("clickstream", 1)


async def _client() -> Any:
    """A consumer never started (no broker): its subscription state is real; its fetcher,
    made at start, is stood in for by what the worker uses of it."""
    client = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:9")
    client._subscription.assign_from_user(
        {TopicPartition(INPUT.topic, INPUT.partition), TopicPartition(*CHANGELOG)}
    )
    records: dict[Any, Any] = {}

    def seek_to(tp: TopicPartition, offset: int) -> None:  # aiokafka's, without its wake-up
        client._subscription.seek(tp, offset)
        records.pop(tp, None)

    client._fetcher = SimpleNamespace(_records=records, _in_flight=set(), seek_to=seek_to)
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


def _app(client: Any, have: int | None, heard_at: float | None = None, queued: int = 0) -> Any:
    """A Faust app in table recovery since t=100, reading CHANGELOG up to offset 30."""
    recovery = SimpleNamespace(
        _recovery_started_at=100.0,
        _active_events_received_at={} if heard_at is None else {CHANGELOG: heard_at},
        active_tps={CHANGELOG},
        active_highwaters={CHANGELOG: 30},
        active_offsets={CHANGELOG: have},
    )
    return SimpleNamespace(
        in_recovery=True,
        tables=SimpleNamespace(_recovery=recovery, _changelog_queue=asyncio.Queue()),
        consumer=_consumer(client, queued=queued),
    )


def test_recovery_is_seen_from_both_sides() -> None:
    async def scenario() -> tuple[Any, Any, Any]:
        client = await _client()
        _seek(client, CHANGELOG, 31)
        app = _app(client, have=6, heard_at=120.0, queued=2)
        view = recovery_view(app)
        app.tables._recovery.active_offsets[CHANGELOG] = 30  # all applied: nothing left
        done = recovery_view(app)
        app.in_recovery = False
        return view, done, recovery_view(app)

    view, done, after = asyncio.run(scenario())
    assert view is not None and done is not None and after is None
    assert (view.started_at, view.queued_calls, view.in_flight, view.changelog_queue) == (
        100.0,
        2,
        [],
        0,
    )
    [read] = view.left
    assert (read.tp, read.need, read.have, read.position, read.heard_at) == (
        CHANGELOG,
        30,
        6,
        31,
        120.0,
    )
    assert not (read.awaiting_reset or read.paused or read.buffered)
    assert done.left == []


def test_a_rewind_happens_only_where_the_fetch_left_the_client() -> None:
    async def scenario() -> list[tuple[bool, int | None]]:
        client = await _client()
        consumer = _consumer(client)
        _seek(client, INPUT, 50)  # a fetch handed out 40..49
        results = [(rewind_if_unmoved(consumer, INPUT, 40, 49), client_position(consumer, INPUT))]
        _seek(client, INPUT, 12)  # sought elsewhere since (a recovery, committed offsets)
        results.append(
            (rewind_if_unmoved(consumer, INPUT, 40, 49), client_position(consumer, INPUT))
        )
        gone = TP("app-events", 0)  # not assigned (revoked meanwhile)
        results.append((rewind_if_unmoved(consumer, gone, 0, 9), None))
        return results

    assert asyncio.run(scenario()) == [(True, 40), (False, 12), (False, None)]
