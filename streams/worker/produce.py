"""Producing to the input topics with confluent-kafka: idempotent, keyed, counted.

Messages are keyed by device_id (customer_id for store events without a device) so that one
device's events stay in order on one partition: the identity stage relies on it.

Batching packs events of one topic *and key* into a JSON array (the contract allows arrays), so
a batch never mixes devices and per-device order survives. A bucket leaves when it is full or
when it has waited `linger_s` of wall-clock time: without the linger a quiet device's events
would wait for its next visit (days of event time) and memory would grow with the number of
devices. Note that an unthrottled replay compresses days into seconds, so even a short linger
can hold a device's events behind other devices' much later ones; the worker then sees them
behind its watermark and flags them late. Use `rate` for realistic arrival, or `batch=1`.

Items the caller marks as not packable (deliberately malformed input) are sent exactly as
given, after any pending bucket of the same key, so they reach the dead-letter path unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

import orjson
from confluent_kafka import KafkaError, Message, Producer


@dataclass
class ProduceStats:
    messages: int = 0
    #: Events sent; a JSON array counts each element, anything else (raw bytes too) counts one.
    events: int = 0
    delivered: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    #: Wall-clock seconds of `send_batched` from its first item (pacing included, the final
    #: flush of delivery reports excluded).
    elapsed_s: float = 0.0
    #: `send_batched` stopped taking items because `duration_s` had passed.
    deadline_reached: bool = False


class OutgoingItem(NamedTuple):
    """A message for producers that know more than its value (the simulator does).

    `key` None means "derive it from the value" (device_id, else customer_id); `packable`
    False sends the value as one message exactly as given, even when batching.
    """

    topic: str
    value: object
    key: bytes | None = None
    packable: bool = True


def message_key(value: object) -> bytes | None:
    first = value[0] if isinstance(value, list) and value else value
    if isinstance(first, dict):
        key = first.get("device_id") or first.get("customer_id")
        if isinstance(key, str):
            return key.encode()
    return None


def _event_count(value: object) -> int:
    return len(value) if isinstance(value, list) else 1


def _can_pack(value: object) -> bool:
    """Only events (objects) go into arrays; anything else is sent as is."""
    if isinstance(value, list):
        return bool(value) and all(isinstance(v, dict) for v in value)
    return isinstance(value, dict)


_Bucket = tuple[float, list[object]]


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
        self,
        items: Iterable[tuple[str, object] | OutgoingItem],
        batch: int = 1,
        rate: float | None = None,
        *,
        duration_s: float | None = None,
        linger_s: float = 0.5,
    ) -> ProduceStats:
        """Send (topic, event or array) items, or `OutgoingItem`s, and return the stats so far.

        With batch > 1, events of the same topic and key are packed into arrays of at most
        `batch` events (see the module docstring for the linger). Times count from the first
        item: `rate` caps the events/s taken from `items` (the next item is taken once
        `events so far / rate` seconds have passed), `duration_s` stops taking items after
        that much wall-clock time, then what is pending is sent. `items` is consumed lazily,
        so a generator streams without being materialised.
        """
        iterator = iter(items)
        item = next(iterator, None)
        # The clock starts with the first item: a generator's set-up is not sending time.
        started = time.monotonic()
        deadline = None if duration_s is None else started + duration_s
        pending: dict[tuple[str, bytes | None], _Bucket] = {}
        taken = 0
        while item is not None:
            if isinstance(item, OutgoingItem):
                topic, value, key, packable = item
            else:
                (topic, value), key, packable = item, None, True
            if key is None and not isinstance(value, bytes):
                key = message_key(value)
            count = _event_count(value)
            if batch > 1 and packable and _can_pack(value):
                self._pack(pending, topic, key, value, batch)
            else:
                held = pending.pop((topic, key), None)
                if held is not None:  # the key's earlier events go first
                    self._send_array(topic, key, held[1])
                raw = value if isinstance(value, bytes) else orjson.dumps(value)
                self.send(topic, raw, key, count)
            taken += count
            if pending:
                self._send_expired(pending, linger_s)
            if rate:
                self._wait_until(started + taken / rate, deadline, pending, linger_s)
            if deadline is not None and time.monotonic() >= deadline:
                self.stats.deadline_reached = True
                break
            item = next(iterator, None)
        for (topic, key), (_, events) in pending.items():
            self._send_array(topic, key, events)
        self.stats.elapsed_s = time.monotonic() - started
        return self.stats

    def _pack(
        self,
        pending: dict[tuple[str, bytes | None], _Bucket],
        topic: str,
        key: bytes | None,
        value: object,
        batch: int,
    ) -> None:
        for event in value if isinstance(value, list) else [value]:
            bucket = pending.get((topic, key))
            if bucket is None:
                bucket = pending[(topic, key)] = (time.monotonic(), [])
            bucket[1].append(event)
            if len(bucket[1]) >= batch:
                del pending[(topic, key)]
                self._send_array(topic, key, bucket[1])

    def _send_array(self, topic: str, key: bytes | None, events: list[object]) -> None:
        self.send(topic, orjson.dumps(events), key, len(events))

    def _send_expired(
        self, pending: dict[tuple[str, bytes | None], _Bucket], linger_s: float
    ) -> None:
        """Send buckets older than the linger. Buckets are created in order and removed when
        sent, so the dict's first entries are the oldest: this stops at the first young one."""
        now = time.monotonic()
        while pending:
            (topic, key), (opened, events) = next(iter(pending.items()))
            if now - opened < linger_s:
                return
            del pending[(topic, key)]
            self._send_array(topic, key, events)

    def _wait_until(
        self,
        when: float,
        deadline: float | None,
        pending: dict[tuple[str, bytes | None], _Bucket],
        linger_s: float,
    ) -> None:
        """Pace: wait while serving delivery reports and sending buckets past their linger."""
        until = when if deadline is None else min(when, deadline)
        while (now := time.monotonic()) < until:
            if pending:
                self._send_expired(pending, linger_s)
            self.producer.poll(min(until - now, 0.05))

    def flush(self, timeout_s: float = 60) -> ProduceStats:
        """Wait for every delivery report; messages still queued at the timeout count as failed
        so that delivered + failed always equals messages."""
        remaining = self.producer.flush(timeout_s)
        if remaining:
            reason = f"not delivered within the {timeout_s:g}s flush timeout"
            self.stats.failed += remaining
            self.stats.errors[reason] = self.stats.errors.get(reason, 0) + remaining
        return self.stats
