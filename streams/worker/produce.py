"""Producing to the input topics with confluent-kafka: idempotent, keyed, counted.

Messages are keyed by device_id (customer_id for store events without a device) so that one
device's events stay in order on one partition: the identity stage relies on it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson
from confluent_kafka import KafkaError, Message, Producer


@dataclass
class ProduceStats:
    messages: int = 0
    events: int = 0
    delivered: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)


def message_key(value: object) -> bytes | None:
    first = value[0] if isinstance(value, list) and value else value
    if isinstance(first, dict):
        key = first.get("device_id") or first.get("customer_id")
        if isinstance(key, str):
            return key.encode()
    return None


class KafkaEventProducer:
    def __init__(
        self, bootstrap: str, topics: dict[str, str] | None = None, **config: object
    ) -> None:
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "linger.ms": 20,
                "log_level": 3,
                **config,
            }
        )
        #: canonical topic -> configured topic name
        self.topics = topics or {}
        self.stats = ProduceStats()

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.stats.delivered += 1
        else:
            self.stats.failed += 1
            self.stats.errors[str(err)] = self.stats.errors.get(str(err), 0) + 1

    def send(self, topic: str, value: bytes, key: bytes | None, events: int = 1) -> None:
        while True:
            try:
                self.producer.produce(
                    self.topics.get(topic, topic), value=value, key=key, on_delivery=self._delivered
                )
                break
            except BufferError:
                self.producer.poll(0.1)
        self.stats.messages += 1
        self.stats.events += events
        self.producer.poll(0)

    def send_batched(
        self, items: Iterable[tuple[str, object]], batch: int = 1, rate: float | None = None
    ) -> None:
        """Send (topic, event or array) items; with batch > 1, pack consecutive events of the
        same topic and key into JSON arrays of up to `batch` events; `rate` caps events/s."""
        pending: dict[tuple[str, bytes | None], list[object]] = {}
        started = time.monotonic()
        for topic, value in items:
            if isinstance(value, bytes):
                self.send(topic, value, None)
                continue
            key = message_key(value)
            if batch <= 1:
                self.send(
                    topic, orjson.dumps(value), key, len(value) if isinstance(value, list) else 1
                )
            else:
                bucket = pending.setdefault((topic, key), [])
                bucket.extend(value if isinstance(value, list) else [value])
                if len(bucket) >= batch:
                    self.send(topic, orjson.dumps(bucket), key, len(bucket))
                    del pending[(topic, key)]
            if rate:
                ahead = self.stats.events / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
        for (topic, key), bucket in pending.items():
            self.send(topic, orjson.dumps(bucket), key, len(bucket))

    def flush(self, timeout_s: float = 60) -> ProduceStats:
        self.producer.flush(timeout_s)
        return self.stats
