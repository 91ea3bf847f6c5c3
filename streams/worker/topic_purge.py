"""Removing an erased subject's bytes from the topics Parcours reads back.

Intuition: Kafka cannot delete one record, but it can delete everything before an offset
(`DeleteRecords`, on topics whose cleanup policy includes `delete`). So a topic is purged by
making the records before some offset useless, then deleting them:

- the records and journey topics: what their consumer group has committed is done (stored in
  ClickHouse, applied to the journey state); it is deleted. What is not consumed yet stays,
  and is dropped when read (the sink and the journey stage check the suppression list).
- the dead-letter topic (no consumer of ours): the messages not naming the subject are copied
  to its end, then everything before the copies is deleted (nothing else is lost).
- a state changelog: the worker that owns the partition writes every live key again (without
  the subject), then deletes everything before what it wrote (streams/worker/app.py).

The raw input topics are the producers', not ours: they keep her until their retention (README
"Privacy"), and a replay of them is filtered by the suppression list. Blocking calls: the
workers run them in a thread.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from streams.privacy.errors import PrivacyUnavailable

#: Changelog topic settings that let a partition be purged (`DeleteRecords` needs `delete` in
#: the cleanup policy); no retention, so `delete` never removes state by itself.
PURGEABLE_CHANGELOG = {
    "cleanup.policy": "compact,delete",
    "retention.ms": "-1",
    "retention.bytes": "-1",
}


#: How long reading a partition to its end may take before the purge gives up (transient).
READ_TIMEOUT_S = 60.0


class TopicPurge:
    """The Kafka clients a purge needs, made once (see the module)."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
        self._reader: Consumer | None = None

    def _consumer(self, group: str | None = None) -> Consumer:
        return Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": group or f"parcours-purge-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "log_level": 3,
            }
        )

    def make_purgeable(self, topics: list[str]) -> None:
        """Give existing changelog topics the settings a purge needs (new ones are created
        with them): changelogs made before issue 16 were `compact` only."""
        existing = self.admin.list_topics(timeout=30).topics
        resources = [
            ConfigResource(
                ResourceType.TOPIC,
                name,
                incremental_configs=[
                    ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                    for k, v in PURGEABLE_CHANGELOG.items()
                ],
            )
            for name in topics
            if name in existing
        ]
        if not resources:
            return
        try:
            for future in self.admin.incremental_alter_configs(resources).values():
                future.result(30)
        except KafkaException as exc:
            raise PrivacyUnavailable(f"cannot make the changelogs purgeable: {exc}") from None

    def partitions(self, topic: str) -> list[int]:
        topics = self.admin.list_topics(topic, timeout=30).topics
        meta = topics.get(topic)
        if meta is None or meta.error is not None:
            return []
        return sorted(meta.partitions)

    def bounds(self, topic: str, partition: int) -> tuple[int, int]:
        """The partition's first and next offsets."""
        if self._reader is None:
            self._reader = self._consumer()
        low, high = self._reader.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=30, cached=False
        )
        return int(low), int(high)

    def committed(self, group: str, topic: str) -> dict[int, int]:
        """The group's committed offsets (next to read) per partition of the topic."""
        consumer = self._consumer(group)
        try:
            tps = [TopicPartition(topic, p) for p in self.partitions(topic)]
            done = consumer.committed(tps, timeout=30) if tps else []
        finally:
            consumer.close()
        return {tp.partition: tp.offset for tp in done if tp.offset >= 0}

    def delete_before(self, topic: str, offsets: dict[int, int]) -> int:
        """Delete every record before these offsets; returns how many records that was."""
        wanted = []
        removed = 0
        for p, offset in sorted(offsets.items()):
            low, _ = self.bounds(topic, p)
            if offset > low:
                wanted.append(TopicPartition(topic, p, offset))
                removed += offset - low
        if not wanted:
            return 0
        try:
            for future in self.admin.delete_records(wanted).values():
                future.result(60)
        except KafkaException as exc:
            raise PrivacyUnavailable(f"cannot delete old records of {topic}: {exc}") from None
        return removed

    def delete_consumed(self, topic: str, group: str) -> int:
        """Delete what the group has consumed and committed."""
        return self.delete_before(topic, self.committed(group, topic))

    def rewrite_without(self, topic: str, names_subject: Callable[[bytes], bool]) -> int:
        """Copy the messages that do not name the subject to the topic's end, then delete
        everything before the copies; returns the messages dropped (0: nothing is touched)."""
        kept: dict[int, list[tuple[bytes | None, bytes | None, Any]]] = {}
        ends: dict[int, int] = {}
        dropped = 0
        for p in self.partitions(topic):
            low, high = self.bounds(topic, p)
            if high <= low:
                continue
            ends[p] = high
            kept[p] = []
            for message in self._read(topic, p, low, high):
                value = message.value()
                if value is not None and names_subject(value):
                    dropped += 1
                    continue
                kept[p].append((message.key(), value, message.headers() or []))
        if not dropped:
            return 0
        producer = Producer({"bootstrap.servers": self.bootstrap, "log_level": 3})
        failed: list[str] = []
        for p, messages in kept.items():
            for key, value, headers in messages:
                producer.produce(
                    topic,
                    key=key,
                    value=value,
                    partition=p,
                    headers=headers,
                    on_delivery=lambda err, _m: failed.append(str(err)) if err else None,
                )
        if producer.flush(60) > 0 or failed:
            raise PrivacyUnavailable(f"cannot copy the kept messages of {topic}: {failed[:1]}")
        self.delete_before(topic, ends)
        return dropped

    def latest(
        self, topic: str, partitions: list[int]
    ) -> dict[int, tuple[dict[bytes, bytes | None], int]]:
        """Per (changelog) partition: the newest value of every key, and its end offset."""
        ranges = {p: self.bounds(topic, p) for p in partitions}
        out: dict[int, tuple[dict[bytes, bytes | None], int]] = {
            p: ({}, high) for p, (_, high) in ranges.items()
        }
        for message in self._read_many(topic, ranges):
            key = message.key()
            if key is not None:
                out[int(message.partition() or 0)][0][key] = message.value()
        return out

    def _read(self, topic: str, partition: int, start: int, end: int) -> list[Message]:
        return self._read_many(topic, {partition: (start, end)})

    def _read_many(self, topic: str, ranges: dict[int, tuple[int, int]]) -> list[Message]:
        """The records of each partition from its start to its end, with one consumer."""
        pending = {p for p, (start, end) in ranges.items() if end > start}
        if not pending:
            return []
        consumer = self._consumer()
        out: list[Message] = []
        try:
            consumer.assign([TopicPartition(topic, p, ranges[p][0]) for p in sorted(pending)])
            deadline = time.monotonic() + READ_TIMEOUT_S
            while pending:
                if time.monotonic() > deadline:
                    raise PrivacyUnavailable(f"{topic} could not be read to its end: {pending}")
                # `consume` waits until it has them all or the time is up: short waits
                for m in consumer.consume(1000, timeout=0.2):
                    p, offset, error = int(m.partition() or 0), m.offset() or 0, m.error()
                    if p not in pending:
                        continue
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            pending.discard(p)  # the end (only transaction markers may follow)
                        continue
                    end = ranges[p][1]
                    if offset < end:
                        out.append(m)
                    if offset >= end - 1:
                        pending.discard(p)
        finally:
            consumer.close()
        return out
