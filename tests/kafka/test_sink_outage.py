"""ClickHouse unreachable: the sink stage holds its batch, commits nothing, loses nothing.

Real Kafka and a real chDB database; the outage is a switch in front of chDB's insert (the
database itself cannot be unplugged in-process). While it is down we look at the group's
committed offsets from outside: none may exist until the rows are in ClickHouse.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, Producer, TopicPartition

from schemas import Event, decode
from streams.core.pipeline import JourneyPipeline
from streams.core.records import EventRow
from streams.devkafka import LocalKafka
from streams.simulate import SimulationConfig, write_ingest_file
from streams.sinks.clickhouse import ClickHouseSink, RetryPolicy
from streams.worker.messages import record_to_bytes
from streams.worker.outbox import pack
from streams.worker.sink_stage import SinkStage
from tests.kafka.harness import create_topics

pytestmark = [pytest.mark.kafka, pytest.mark.integration]


class SwitchableClient:
    """chDB behind a switch: while `down`, every insert fails as a refused connection would."""

    def __init__(self, client: Client) -> None:
        self.client, self.down, self.refused = client, True, 0

    def insert(self, *args: Any, **kwargs: Any) -> Any:
        if self.down:
            self.refused += 1
            raise ConnectionRefusedError("ClickHouse is unreachable")
        return self.client.insert(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_an_outage_pauses_the_sink_and_loses_nothing(
    kafka_bootstrap: str, kafka_topic_factory: Callable[..., str], tmp_path: Path, ch: Client
) -> None:
    traffic = tmp_path / "traffic.jsonl"
    write_ingest_file(SimulationConfig(customers=10, days=1, seed=3), traffic)
    pipeline, records = JourneyPipeline(), []
    for line in traffic.read_bytes().splitlines():
        doc = orjson.loads(line)
        for result in decode(orjson.dumps(doc["value"]), doc["topic"]):
            if isinstance(result, Event):
                records.extend(pipeline.process(result))
    records.extend(pipeline.finish())
    events = {r.event_id for r in records if isinstance(r, EventRow)}
    assert len(events) > 50

    topic = kafka_topic_factory("records", partitions=2)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(0, len(records), 50):  # packed, as the worker sends them
        chunk = records[i : i + 50]
        producer.produce(topic, pack([record_to_bytes(r) for r in chunk]), partition=i // 50 % 2)
    assert producer.flush(30) == 0

    group = f"sink-{uuid.uuid4().hex[:8]}"
    watcher = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group})
    partitions = [TopicPartition(topic, p) for p in range(2)]
    client = SwitchableClient(ch)
    seen_during_outage: list[tuple[list[int], int]] = []

    def wait(seconds: float) -> None:
        """The stage's pause between attempts: look from outside, end the outage after 3."""
        committed = [tp.offset for tp in watcher.committed(partitions, timeout=10)]
        [(stored,)] = ch.query("SELECT count() FROM events").result_rows
        seen_during_outage.append((committed, stored))
        if len(seen_during_outage) == 3:
            client.down = False

    sink = ClickHouseSink(
        cast(Client, client),
        flush_interval_s=None,
        retry=RetryPolicy(attempts=2, first_delay_s=0.01),
        sleep=lambda s: None,
    )
    stage = SinkStage(
        kafka_bootstrap, topic, sink, group=group, outage_delays_s=(0.1, 0.4), sleep=wait
    )
    stats = stage.run(idle_exit_s=5)

    assert stats.outage_retries == 3 and client.refused >= 6  # 2 attempts per retry at least
    for committed, stored in seen_during_outage:
        assert stored == 0
        assert all(offset < 0 for offset in committed)  # nothing committed yet
    [(stored,)] = ch.query("SELECT uniqExact(event_id) FROM events").result_rows
    assert stored == len(events)
    ends = [watcher.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions]
    assert [tp.offset for tp in watcher.committed(partitions, timeout=10)] == ends
    watcher.close()


class RestartingBroker:
    """chDB whose first insert restarts the broker (in a thread) and returns once the broker
    refuses connections: the sink stage then commits its offsets with no broker there."""

    def __init__(self, client: Client, broker: LocalKafka) -> None:
        self.client, self.broker = client, broker
        self.thread: threading.Thread | None = None

    def insert(self, *args: Any, **kwargs: Any) -> Any:
        result = self.client.insert(*args, **kwargs)
        if self.thread is None:
            self.thread = threading.Thread(target=self.broker.restart)
            self.thread.start()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", self.broker.port), 0.5).close()
                except OSError:
                    break  # the broker is down
                time.sleep(0.05)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_a_broker_restart_while_the_sink_commits_loses_nothing(tmp_path: Path, ch: Client) -> None:
    """The broker goes away between the insert and the commit of the offsets (a broker
    restart, seen in the chaos test): the stage waits for it and commits, it does not exit."""
    broker = LocalKafka()
    broker.start()
    try:
        admin_topic = f"records-{uuid.uuid4().hex[:8]}"
        create_topics(broker.bootstrap, {admin_topic: 1})
        traffic = tmp_path / "traffic.jsonl"
        write_ingest_file(SimulationConfig(customers=3, days=1, seed=5), traffic)
        pipeline, records = JourneyPipeline(), []
        for line in traffic.read_bytes().splitlines():
            doc = orjson.loads(line)
            for result in decode(orjson.dumps(doc["value"]), doc["topic"]):
                if isinstance(result, Event):
                    records.extend(pipeline.process(result))
        records.extend(pipeline.finish())
        producer = Producer({"bootstrap.servers": broker.bootstrap})
        producer.produce(admin_topic, pack([record_to_bytes(r) for r in records]))
        assert producer.flush(30) == 0

        client = RestartingBroker(ch, broker)
        group = f"sink-{uuid.uuid4().hex[:8]}"
        sink = ClickHouseSink(cast(Client, client), flush_interval_s=None)
        stage = SinkStage(broker.bootstrap, admin_topic, sink, group=group)
        stats = stage.run(idle_exit_s=5)
        assert client.thread is not None
        client.thread.join(120)

        assert stats.batches == 1
        watcher = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
        [committed] = watcher.committed([TopicPartition(admin_topic, 0)], timeout=30)
        watcher.close()
        assert committed.offset == 1
    finally:
        broker.stop()
