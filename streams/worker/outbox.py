"""Outputs of one agent batch, packed into few Kafka messages.

Intuition: a Kafka message costs the worker far more than its bytes (a Faust send, a future, a
producer batch entry, a consumer record on the other side), so one message per event row or per
journey input spends most of the CPU on messaging. An agent therefore collects what a batch
sends, per destination topic and partition and in order, and sends each group as one JSON
array (split when it grows past `max_items` or `max_bytes`). Order within a partition is what
the pipeline relies on (a hand-over before the watermark that could pass it), and it is kept:
items are appended in the order they were produced and the packs of one partition are sent in
that order by the one producer.

Packing changes no guarantee: the outbox is sent, and the producer flushed, before the batch's
state is written (streams/worker/checkpoint.py), exactly as single messages were.
"""

from __future__ import annotations

from typing import Any, Protocol


class PartitionedTopic(Protocol):
    async def send(
        self, *, key: Any = None, value: Any = None, partition: int | None = None
    ) -> Any:
        """Faust's `Topic.send` (the part of its signature used here)."""


def pack(items: list[bytes]) -> bytes:
    """Serialised JSON values joined into one JSON array, without parsing them again."""
    return b"[" + b",".join(items) + b"]"


class Outbox:
    def __init__(self, max_items: int = 1000, max_bytes: int = 512 * 1024) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        #: (topic, partition) -> (items, their total size), in order of first use
        self._groups: dict[tuple[PartitionedTopic, int], tuple[list[bytes], list[int]]] = {}
        self._full: list[tuple[PartitionedTopic, int, bytes]] = []

    def add(self, topic: PartitionedTopic, partition: int, item: bytes) -> None:
        group = self._groups.get((topic, partition))
        if group is None:
            group = self._groups[(topic, partition)] = ([], [0])
        items, size = group
        if items and (len(items) >= self.max_items or size[0] + len(item) > self.max_bytes):
            self._full.append((topic, partition, pack(items)))
            items.clear()
            size[0] = 0
        items.append(item)
        size[0] += len(item) + 1

    def __len__(self) -> int:
        return len(self._full) + sum(1 for items, _ in self._groups.values() if items)

    async def send(self) -> int:
        """Send every pack (a partition's packs in order); returns the number of messages."""
        sent = 0
        groups, self._groups = self._groups, {}
        full, self._full = self._full, []
        for topic, partition, value in full:
            await topic.send(value=value, partition=partition)
            sent += 1
        for (topic, partition), (items, _) in groups.items():
            if items:
                await topic.send(value=pack(items), partition=partition)
                sent += 1
        return sent
