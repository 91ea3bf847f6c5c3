"""The sink stage: `parcours-records` -> ClickHouse, committing offsets only after the insert.

Intuition: this is the one place where "effectively once" is decided. A batch of records is
read, written to ClickHouse (deterministic ids, dedup tokens, retries with backoff), and only
then are the offsets committed. A crash before the commit replays the batch: the same ids come
back and ClickHouse keeps one copy. While ClickHouse is down the loop retries the same batch
and reads nothing new, so memory stays bounded and nothing is committed that is not stored.

It is a plain confluent-kafka consumer loop in its own process (inserts never block an asyncio
loop). With an embedded chDB database run exactly one (chDB allows one process per database);
against a ClickHouse server run as many as the records topic has partitions.

A record that cannot be read (not JSON, not a known record kind) is a permanent fault of that
one message: it goes to the dead-letter topic with the reason in its headers, and the stage
goes on (before issue 12 it exited, re-read the same message on restart and exited again).
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from streams import metrics
from streams.clickhouse.errors import SinkError
from streams.core.records import EventRow, FrictionSpike, MinuteAggregate, Record
from streams.core.spike_tracker import SpikeTracker
from streams.privacy.policy import PrivacyFilter
from streams.privacy.suppression import record_suppressed
from streams.sinks.base import RejectedInput
from streams.sinks.clickhouse import ClickHouseSink
from streams.sinks.faults import is_permanent
from streams.sinks.spike_history import describe, stored_tracker
from streams.spike_settings import spike_settings
from streams.worker.messages import outputs_from_bytes
from streams.worker.suppression_topic import SuppressionReader

_log = logging.getLogger("parcours.sink")

#: The sink's consumer group (`parcours forget` deletes what it committed from the records).
SINK_GROUP = "parcours-sink"

#: Sends one unreadable records-topic message to the dead-letter topic: (value, headers).
DeadLetter = Callable[[bytes, list[tuple[str, bytes]]], None]


def split_outputs(
    messages: list[Any],
) -> tuple[list[Record], list[RejectedInput], list[tuple[Any, str]]]:
    """Records, rejections, and the messages that could not be read with the reason why.
    A bad message never hides the good ones beside it."""
    records: list[Record] = []
    rejected: list[RejectedInput] = []
    malformed: list[tuple[Any, str]] = []
    for m in messages:
        try:
            outputs = outputs_from_bytes(m.value())
        except Exception as exc:  # any bytes may arrive on a topic
            malformed.append((m, f"{type(exc).__name__}: {exc}"))
            continue
        for item in outputs:
            if isinstance(item, RejectedInput):
                rejected.append(item)
            else:
                records.append(item)
    return records, rejected, malformed


def malformed_headers(message: Any, reason: str) -> list[tuple[str, bytes]]:
    """Kafka Connect-style error headers for an unreadable records-topic message."""
    return [
        ("__connect.errors.topic", str(message.topic()).encode()),
        ("__connect.errors.partition", str(message.partition()).encode()),
        ("__connect.errors.offset", str(message.offset()).encode()),
        ("__connect.errors.exception.class.name", b"parcours.MalformedRecord"),
        ("__connect.errors.exception.message", reason.encode("utf-8", "replace")[:1000]),
        ("parcours.reason", b"malformed_record"),
    ]


@dataclass
class SinkStageStats:
    batches: int = 0
    records: int = 0
    rejected: int = 0
    #: Times a whole batch was retried because ClickHouse stayed unreachable.
    outage_retries: int = 0
    #: Records-topic messages that could not be read, sent to the dead-letter topic.
    malformed: int = 0
    #: Records and rejections dropped because they name an erased subject.
    suppressed: int = 0


class SinkStage:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        sink: ClickHouseSink,
        *,
        group: str = SINK_GROUP,
        batch_size: int = 5000,
        outage_delays_s: tuple[float, float] = (1.0, 60.0),
        sleep: Callable[[float], None] = time.sleep,
        dlq_topic: str = "parcours-dlq",
        dead_letter: DeadLetter | None = None,
        privacy: PrivacyFilter | None = None,
        suppressions: SuppressionReader | None = None,
    ) -> None:
        #: The suppression list (from ClickHouse and its topic, followed while running):
        #: records naming an erased subject are dropped before the insert.
        self.privacy = privacy
        self.suppressions = suppressions
        self.bootstrap, self.dlq_topic = bootstrap, dlq_topic
        self._dead_letter = dead_letter
        self._producer: Producer | None = None
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
        #: Friction spikes, from the per-minute aggregates passing through (one sink process
        #: must see every shard's minutes: README, "Friction spikes"). Rebuilt from the stored
        #: minutes and spikes before the first batch is judged (`_spikes_from_storage`), so a
        #: restart carries on with the baseline and the spikes the stopped process had.
        self.spikes = SpikeTracker(spike_settings())
        self._spikes_restored = False
        #: Spike rows the rebuild changed, written with the first batch.
        self._spikes_rebuilt: list[FrictionSpike] = []

    def stop(self, *_: object) -> None:
        self._stop = True

    def run(self, *, idle_exit_s: float | None = None) -> SinkStageStats:
        """Consume until stopped (SIGTERM/SIGINT), or until idle for `idle_exit_s`."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        self.consumer.subscribe([self.topic])
        last_data = time.monotonic()
        metrics.SINK_LAST_COMMIT.set(time.time())
        try:
            while not self._stop:
                messages = self.consumer.consume(self.batch_size, timeout=0.5)
                good = [m for m in messages if m.error() is None]
                for m in messages:
                    error = m.error()
                    if error is not None and error.code() != KafkaError._PARTITION_EOF:
                        metrics.SINK_ERRORS.labels("kafka").inc()
                if not good:
                    if idle_exit_s is not None and time.monotonic() - last_data > idle_exit_s:
                        break
                    continue
                last_data = time.monotonic()
                metrics.SINK_BATCH_PENDING.set(1)
                self._write(good)
                self._commit(good)
                metrics.SINK_BATCH_PENDING.set(0)
                metrics.SINK_LAST_COMMIT.set(time.time())
                self._observe_lag(good)
        finally:
            self.consumer.close()
        return self.stats

    def _commit(self, messages: list[Message]) -> None:
        """Commit the batch's offsets, waiting while the group's coordinator is unavailable or
        loading (a broker restart: the chaos test's sink exited on `COORDINATOR_LOAD_IN_PROGRESS`).
        Other errors (the group rebalanced meanwhile) still end the stage: a restart re-reads
        the batch, which ClickHouse keeps once."""
        delay, longest = self.outage_delays_s
        while True:
            try:
                self.consumer.commit(offsets=_next_offsets(messages), asynchronous=False)
                return
            except KafkaException as exc:
                if exc.args[0].code() not in _COORDINATOR_AWAY:
                    raise
                metrics.SINK_ERRORS.labels("kafka").inc()
                self.sleep(delay)
                delay = min(delay * 2, longest)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop = True

    def _write(self, messages: list[Any]) -> None:
        records, rejected, malformed = split_outputs(messages)
        records, rejected = self._drop_suppressed(records, rejected)
        for message, reason in malformed:
            self._send_dead_letter(message.value() or b"", malformed_headers(message, reason))
        self.stats.malformed += len(malformed)
        try:
            # The sink buffers everything before it flushes a full table, so if that flush
            # fails nothing is lost: the loop below writes what is buffered. One call for both:
            # with two, an outage in the first lost the second's rows (the chaos test).
            self.sink.add_batch([*records, *self._judge_spikes(records)], rejected)
        except SinkError:
            self.stats.outage_retries += 1
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

    def _spikes_from_storage(self) -> None:
        """The tracker as the tables leave it (streams/sinks/spike_history.py). ClickHouse
        unreachable: wait and try again, reading nothing new (as a failed flush does); a
        permanent error (no such table: migrations not run) stops the stage."""
        delay, longest = self.outage_delays_s
        while True:
            try:
                self.spikes, self._spikes_rebuilt = stored_tracker(
                    self.sink.client, self.spikes.settings
                )
                break
            except Exception as exc:  # the client's errors: told apart by `is_permanent`
                if is_permanent(exc):
                    raise SinkError(f"cannot read the stored spikes: {exc}") from exc
                self.stats.outage_retries += 1
                self.sleep(delay)
                delay = min(delay * 2, longest)
        self._spikes_restored = True
        _log.info("spike tracker rebuilt from storage: %s", describe(self.spikes))

    def _drop_suppressed(
        self, records: list[Record], rejected: list[RejectedInput]
    ) -> tuple[list[Record], list[RejectedInput]]:
        """Records sent before their subject was erased, read after: never stored again."""
        privacy = self.privacy
        if privacy is None:
            return records, rejected
        if self.suppressions is not None:
            privacy.suppress(self.suppressions.poll())
        if not privacy.suppressed:
            return records, rejected
        kept = [r for r in records if not record_suppressed(privacy, r)]
        kept_rejected = [r for r in rejected if not record_suppressed(privacy, r)]
        dropped = len(records) - len(kept) + len(rejected) - len(kept_rejected)
        if dropped:
            self.stats.suppressed += dropped
            metrics.PRIVACY_SUPPRESSED.inc(dropped)
        return kept, kept_rejected

    def _judge_spikes(self, records: list[Record]) -> list[FrictionSpike]:
        """A minute's aggregate is written once the journey's watermark has passed it: the
        newest minute seen is how far event time has come."""
        if not self._spikes_restored:
            self._spikes_from_storage()
        self.spikes.observe(records)
        rebuilt, self._spikes_rebuilt = self._spikes_rebuilt, []
        newest = max((r.minute_ms for r in records if isinstance(r, MinuteAggregate)), default=None)
        if newest is None:
            return rebuilt
        rows = self.spikes.advance(newest + 60_000)
        metrics.observe_spike_gauges(self.spikes.gauges())
        return [*rebuilt, *rows]

    def _send_dead_letter(self, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        """To the DLQ, acknowledged before the offsets are committed (nothing is lost)."""
        metrics.DLQ_MESSAGES.labels("records", "malformed_record").inc()
        if self._dead_letter is not None:
            self._dead_letter(value, headers)
            return
        if self._producer is None:
            self._producer = Producer({"bootstrap.servers": self.bootstrap, "log_level": 3})
        wire: list[tuple[str, str | bytes | None]] = list(headers)
        self._producer.produce(self.dlq_topic, value=value, headers=wire)
        delay = self.outage_delays_s[0]
        while self._producer.flush(30) > 0:  # Kafka unreachable: wait, never commit past it
            self.sleep(delay)

    def _observe_lag(self, messages: list[Message]) -> None:
        for m in messages[-1:]:
            topic, partition, offset = str(m.topic()), int(m.partition() or 0), m.offset() or 0
            tp = TopicPartition(topic, partition)
            _, high = self.consumer.get_watermark_offsets(tp, timeout=1, cached=True)
            metrics.CONSUMER_LAG.labels(topic, str(partition)).set(max(0, high - offset - 1))


#: Commit errors that only mean "not now": the coordinator moves, loads or is unreachable.
_COORDINATOR_AWAY = frozenset(
    {
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._TIMED_OUT,
        KafkaError._WAIT_COORD,
    }
)


def _next_offsets(messages: list[Message]) -> list[TopicPartition]:
    last: dict[tuple[str, int], int] = {}
    for m in messages:
        key = (str(m.topic()), int(m.partition() or 0))
        last[key] = max(last.get(key, -1), m.offset() or 0)
    return [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]
