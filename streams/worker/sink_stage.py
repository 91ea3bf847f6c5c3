"""The sink stage: `parcours-records` -> ClickHouse, committing offsets only after the insert.

Intuition: this is the one place where "effectively once" is decided. A batch of records is
read, written to ClickHouse (deterministic ids, dedup tokens, retries with backoff), and only
then are the offsets committed. A crash before the commit replays the batch: the same ids come
back and ClickHouse keeps one copy. While ClickHouse is down the loop retries the same batch
and reads nothing new, so memory stays bounded and nothing is committed that is not stored.

It is a plain confluent-kafka consumer loop in its own process (inserts never block an asyncio
loop). With an embedded chDB database run exactly one (chDB allows one process per database);
against a ClickHouse server run as many as the records topic has partitions.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from confluent_kafka import Consumer, KafkaError, TopicPartition

from streams import metrics
from streams.clickhouse.errors import SinkError
from streams.core.records import EventRow, Record
from streams.sinks.base import RejectedInput
from streams.sinks.clickhouse import ClickHouseSink
from streams.worker.messages import outputs_from_bytes


@dataclass
class SinkStageStats:
    batches: int = 0
    records: int = 0
    rejected: int = 0
    #: Times a whole batch was retried because ClickHouse stayed unreachable.
    outage_retries: int = 0


class SinkStage:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        sink: ClickHouseSink,
        *,
        group: str = "parcours-sink",
        batch_size: int = 5000,
        outage_delays_s: tuple[float, float] = (1.0, 60.0),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "enable.partition.eof": False,
                "log_level": 3,
                # While ClickHouse is down the stage holds its batch and does not poll; it
                # must stay in the group meanwhile (heartbeats run in librdkafka's thread).
                "max.poll.interval.ms": 86_400_000,
            }
        )
        #: First and largest wait between attempts while ClickHouse is unreachable.
        self.outage_delays_s = outage_delays_s
        self.sleep = sleep
        self.topic = topic
        self.sink = sink
        self.batch_size = batch_size
        self.stats = SinkStageStats()
        self._stop = False

    def stop(self, *_: object) -> None:
        self._stop = True

    def run(self, *, idle_exit_s: float | None = None) -> SinkStageStats:
        """Consume until stopped (SIGTERM/SIGINT), or until idle for `idle_exit_s`."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        self.consumer.subscribe([self.topic])
        last_data = time.monotonic()
        try:
            while not self._stop:
                messages = self.consumer.consume(self.batch_size, timeout=0.5)
                good = [m for m in messages if m.error() is None]
                for m in messages:
                    if m.error() is not None and m.error().code() != KafkaError._PARTITION_EOF:
                        metrics.SINK_ERRORS.labels("kafka").inc()
                if not good:
                    if idle_exit_s is not None and time.monotonic() - last_data > idle_exit_s:
                        break
                    continue
                last_data = time.monotonic()
                self._write(good)
                self.consumer.commit(offsets=_next_offsets(good), asynchronous=False)
                self._observe_lag(good)
        finally:
            self.consumer.close()
        return self.stats

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop = True

    def _write(self, messages: list[object]) -> None:
        records: list[Record] = []
        rejected: list[RejectedInput] = []
        for m in messages:
            for item in outputs_from_bytes(m.value()):  # type: ignore[attr-defined]
                if isinstance(item, RejectedInput):
                    rejected.append(item)
                else:
                    records.append(item)
        self.sink.add(records)
        self.sink.add_rejections(rejected)
        delay, longest = self.outage_delays_s
        while True:
            try:
                self.sink.flush()
                break
            except SinkError:
                # ClickHouse is down (the sink's own retries are spent): keep the batch, read
                # nothing new, commit nothing, and try again later. This is the backpressure:
                # the records topic keeps the rest, memory holds one batch.
                self.stats.outage_retries += 1
                self.sleep(delay)
                delay = min(delay * 2, longest)
        now = time.time()
        for record in records:
            if isinstance(record, EventRow):
                metrics.END_TO_END_LATENCY.observe(max(0.0, now - record.received_at_ms / 1000))
        self.stats.batches += 1
        self.stats.records += len(records)
        self.stats.rejected += len(rejected)

    def _observe_lag(self, messages: list[object]) -> None:
        for m in messages[-1:]:
            tp = TopicPartition(m.topic(), m.partition())  # type: ignore[attr-defined]
            _, high = self.consumer.get_watermark_offsets(tp, timeout=1, cached=True)
            metrics.CONSUMER_LAG.labels(m.topic(), str(m.partition())).set(
                max(0, high - m.offset() - 1)
            )  # type: ignore[attr-defined]


def _next_offsets(messages: list[object]) -> list[TopicPartition]:
    last: dict[tuple[str, int], int] = {}
    for m in messages:
        key = (m.topic(), m.partition())  # type: ignore[attr-defined]
        last[key] = max(last.get(key, -1), m.offset())  # type: ignore[attr-defined]
    return [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]
