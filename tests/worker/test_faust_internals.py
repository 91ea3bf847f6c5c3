"""Each private attribute of Faust and aiokafka that streams/worker/faust_internals.py relies
on, checked on the real classes of the pinned versions (a real Faust app without a broker, a
real aiokafka consumer, fetcher and partition state), not on stand-ins: an upgrade that moves
one fails here. The behaviour built on them is tested in test_client_state.py,
test_consumer.py and test_recovery_watch.py, and against a broker in tests/kafka."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.client import AIOKafkaClient
from aiokafka.consumer.fetcher import Fetcher
from aiokafka.consumer.subscription_state import TopicPartitionState
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer as FaustConsumer

from streams.core.config import JourneyConfig
from streams.settings import Settings, StreamSettings
from streams.worker.app import create_app
from streams.worker.faust_internals import (
    RewindingConsumer,
    committed_offsets,
    consumer_thread,
    handed_offsets,
    table_recovery,
)

pytestmark = pytest.mark.unit


def _app() -> Any:
    return create_app(Settings(kafka_bootstrap="127.0.0.1:9"), StreamSettings(), JourneyConfig())


def test_the_app_consumer_is_ours_and_keeps_the_offsets_read_privately() -> None:
    async def scenario() -> Any:
        app = _app()
        return app, app.consumer

    app, consumer = asyncio.run(scenario())
    assert isinstance(consumer, RewindingConsumer)
    assert dict(committed_offsets(consumer)) == {} and dict(handed_offsets(consumer)) == {}
    assert "_read_offset" in vars(consumer)  # else handed_offsets reads nothing, silently
    thread = consumer_thread(app)
    assert hasattr(thread, "_consumer")  # the aiokafka client, made when the thread starts
    assert isinstance(thread.method_queue._queue, asyncio.Queue)
    assert callable(thread.call_thread)


def test_faust_hands_fetches_through_the_method_rewinding_consumer_overrides() -> None:
    """`RewindingConsumer._wait_next_records` wraps Faust's: same name, signature and result
    (records per partition, active partitions), and `getmany` is what calls it."""
    theirs = inspect.signature(FaustConsumer._wait_next_records)
    assert list(theirs.parameters) == ["self", "timeout"]
    assert "Tuple[Optional[Mapping[" in str(theirs)
    assert "self._wait_next_records(" in inspect.getsource(FaustConsumer.getmany)
    assert inspect.iscoroutinefunction(RewindingConsumer._wait_next_records)


def test_table_recovery_keeps_the_fields_the_recovery_view_reads() -> None:
    async def scenario() -> Any:
        app = _app()
        before = table_recovery(app)
        app.tables.recovery  # noqa: B018 (the public property makes it)
        return before, table_recovery(app), app

    before, recovery, app = asyncio.run(scenario())
    assert before is None and isinstance(recovery, Recovery)
    for name in ("active_tps", "active_offsets", "active_highwaters"):
        assert hasattr(recovery, name), name
    assert recovery._active_events_received_at == {}
    assert recovery._recovery_started_at is None  # set when a recovery starts
    assert "_recovery_started_at = monotonic()" in inspect.getsource(Recovery)
    assert app.tables.changelog_queue is app.tables._changelog_queue


def test_the_flow_control_resume_clears_through_its_clear_method() -> None:
    """`keep_stream_records_on_resume` swaps the `clear` that Faust's resume calls."""
    app = _app()
    source = inspect.getsource(type(app.flow_control).resume)
    assert "self.clear()" in source


def test_aiokafka_keeps_positions_and_fetches_where_the_worker_reads_them() -> None:
    async def scenario() -> tuple[Any, Any, Any]:
        consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:9")
        tp = TopicPartition("clickstream", 0)
        consumer._subscription.assign_from_user({tp})
        assignment = consumer._subscription.subscription.assignment
        state = assignment.state_value(tp)
        consumer._subscription.seek(tp, 7)
        client = AIOKafkaClient(bootstrap_servers="127.0.0.1:9")
        fetcher = Fetcher(client, consumer._subscription)
        found = (fetcher._records, fetcher._in_flight)
        await fetcher.close()
        await client.close()
        consumer._closed = True  # never started
        return state, found, consumer

    state, (records, in_flight), consumer = asyncio.run(scenario())
    assert isinstance(state, TopicPartitionState)
    assert state._position == 7 and state.position == 7 and state.has_valid_position
    assert state.awaiting_reset is False and state.paused is False
    assert dict(records) == {} and set(in_flight) == set()
    assert callable(consumer.pause) and callable(consumer.paused) and callable(consumer.resume)
