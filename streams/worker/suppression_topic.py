"""The suppression list as a compacted Kafka topic: `parcours forget` writes, every worker and
every sink reads.

Intuition: in streaming mode no process shares a database with `parcours forget` except the
sink, so the list travels the way everything else does, as a topic. One record per keyed
subject hash (key: the hash, value: its kind and when it was added), on a compacted topic
(`cleanup.policy=compact`): compaction keeps the newest record per key, so the topic never
loses a subject and never grows beyond one record per subject. Every reader reads it from the
beginning, without a consumer group (each process needs all of it, not a share), and keeps the
hashes in memory: a worker reads it to its end before it processes anything, so a replay
started after an erasure drops her from its first message, and then polls it (without
blocking) for erasures made while it runs.

Only hashes cross this topic: without `PARCOURS_PRIVACY_KEY` nobody can tell whose they are.
This module is the thin Kafka side; what is dropped is decided in streams/privacy/.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer
from confluent_kafka import TopicPartition as KafkaTP
from confluent_kafka.admin import AdminClient, NewTopic

from streams.privacy.errors import PrivacyUnavailable
from streams.privacy.keys import SubjectKind

#: The topic's configuration: compacted, so one record per subject is kept for ever.
TOPIC_CONFIG = {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}


def ensure_topic(bootstrap: str, topic: str) -> list[int]:
    """Create the suppression topic (one partition, compacted) unless it exists; returns its
    partitions once the broker's metadata shows them (a new topic's may lag behind)."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    try:
        if topic not in admin.list_topics(timeout=30).topics:
            futures = admin.create_topics([NewTopic(topic, 1, 1, config=dict(TOPIC_CONFIG))])
            for future in futures.values():
                try:
                    future.result(30)
                except KafkaException as exc:
                    if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                        raise
        for _ in range(120):
            meta = admin.list_topics(topic, timeout=30).topics.get(topic)
            partitions = {} if meta is None or meta.error is not None else meta.partitions
            if partitions and all(p.leader >= 0 for p in partitions.values()):
                return sorted(partitions)
            time.sleep(0.25)
    except KafkaException as exc:
        raise PrivacyUnavailable(f"cannot create the suppression topic {topic}: {exc}") from None
    raise PrivacyUnavailable(f"the suppression topic {topic} has no partition with a leader")


def publish(
    bootstrap: str, topic: str, entries: Iterable[tuple[SubjectKind, str]], at_ms: int
) -> int:
    """Put subject hashes on the list; returns how many. Raises `PrivacyUnavailable` unless
    every one is acknowledged by the broker (then the erasure must be run again)."""
    ensure_topic(bootstrap, topic)
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "log_level": 3}
    )
    failed: list[str] = []

    def delivered(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            failed.append(str(err))

    sent = 0
    for kind, subject_hash in entries:
        value = orjson.dumps({"kind": kind, "added_at": at_ms})
        producer.produce(topic, key=subject_hash.encode(), value=value, on_delivery=delivered)
        sent += 1
    if producer.flush(60) > 0 or failed:
        raise PrivacyUnavailable(
            f"the suppression topic {topic} did not acknowledge every subject: "
            f"{failed[:1] or 'timed out'}"
        )
    return sent


class SuppressionReader:
    """Reads the whole suppression topic, then what is added to it (see the module)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.partitions = ensure_topic(bootstrap, topic)
        self.topic = topic
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                # never subscribed, never committed: the group id only satisfies the client
                "group.id": f"parcours-suppressions-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "log_level": 3,
            }
        )
        self.consumer.assign([KafkaTP(topic, p, OFFSET_BEGINNING) for p in self.partitions])

    def catch_up(self, timeout_s: float = 60.0) -> set[str]:
        """Every hash on the topic now: read until each partition's end as it was when called."""
        ends = {}
        for p in self.partitions:
            _, high = self.consumer.get_watermark_offsets(KafkaTP(self.topic, p), timeout=30)
            ends[p] = high
        hashes: set[str] = set()
        deadline = time.monotonic() + timeout_s
        while True:
            positions = {
                tp.partition: tp.offset
                for tp in self.consumer.position([KafkaTP(self.topic, p) for p in self.partitions])
            }
            if all(ends[p] <= 0 or positions.get(p, -1) >= ends[p] for p in self.partitions):
                return hashes
            if time.monotonic() > deadline:
                raise PrivacyUnavailable(
                    f"the suppression topic {self.topic} could not be read to its end in "
                    f"{timeout_s:.0f} s: refusing to process input that might name an erased "
                    "subject"
                )
            hashes |= self._read(0.2)  # `consume` waits for a full batch or the timeout

    def poll(self) -> set[str]:
        """The hashes fetched since the last call (never waits)."""
        return self._read(0)

    def _read(self, timeout_s: float) -> set[str]:
        hashes = set()
        for message in self.consumer.consume(1000, timeout=timeout_s):
            if message.error() is not None or message.value() is None:
                continue  # a tombstone lifts nothing: erasure is not undone by the stream
            key = message.key()
            if key:
                hashes.add(key.decode("ascii", "replace"))
        return hashes

    def close(self) -> None:
        self.consumer.close()
