"""The worker's two stages driven in-process, without a broker: in-memory topics and table.

Intuition (bytewax's `TestingSource` / `TestingSink`): a stage only ever calls `send` on a topic,
`send_changelog` on a table, `producer.flush()` and a few consumer queries. Give it objects
that keep what is sent in per-partition lists, and the real `IdentifyStage` and `JourneyStage`
run exactly as under Faust, message by message, so every journey story can go through the
worker's code without Kafka. The Kafka tests (tests/kafka) remain the end-to-end proof.

Time: the stories arrive all at once, as data produced live would: while an input partition
has nothing left to read, it is idle and its watermark follows the clock, and the clock is the
newest event time read so far (events produced as they happen). That is what the real worker
does with `idle_after_s` of wall clock; here it is deterministic.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka.partitioner import DefaultPartitioner

from streams.core.config import JourneyConfig
from streams.core.pipeline import END_OF_TIME_MS
from streams.core.records import Record
from streams.sinks.base import RejectedInput
from streams.worker.identify_stage import IdentifyStage, Wiring
from streams.worker.journey_stage import JourneyStage
from streams.worker.messages import outputs_from_bytes
from streams.worker.produce import message_key

TOPICS = {"clickstream": "clickstream", "app-events": "app-events", "store-events": "store-events"}


@dataclass(frozen=True, slots=True)
class Message:
    """The fields of a Kafka record the stages read (Faust's `Message`)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp: float


@dataclass(frozen=True, slots=True)
class Delivery:
    """What an agent's stream yields (Faust's `EventT`): the stages read `.message`."""

    message: Message


@dataclass(eq=False)  # hashed by identity, as Faust's topics are
class Topic:
    """A topic as lists of messages per partition."""

    name: str
    partitions: int
    log: dict[int, list[Message]] = field(default_factory=lambda: defaultdict(list))
    bytes_sent: int = 0

    async def send(
        self,
        *,
        key: Any = None,
        value: Any = None,
        partition: int | None = None,
        headers: Any = None,
    ) -> None:
        self.append(key, value, 0 if partition is None else partition)

    def append(self, key: bytes | None, value: bytes, partition: int) -> None:
        log = self.log[partition]
        log.append(Message(self.name, partition, len(log), key, value, 0.0))
        self.bytes_sent += len(value) + len(key or b"")


@dataclass
class Table:
    """A Faust table's in-memory store (`data`) and its changelog, as lists per partition."""

    data: dict[Any, Any] = field(default_factory=dict)
    changelog: dict[int, list[tuple[Any, bytes | None]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    bytes_sent: int = 0
    #: values kept as bytes on recovery (a Faust table with `value_type=bytes`), else JSON
    raw: bool = False

    def send_changelog(
        self,
        partition: int,
        key: Any,
        value: bytes | None,
        key_serializer: Any = None,
        value_serializer: Any = None,
    ) -> None:
        self.changelog[partition].append((key, value))
        self.bytes_sent += len(value or b"") + len(str(key))

    def recover(self) -> None:
        """As Faust recovers a table after a restart: the latest value of each key, decoded."""
        self.data = {}
        for entries in self.changelog.values():
            for key, value in entries:
                if value is None:
                    self.data.pop(key, None)
                else:
                    self.data[key] = value if self.raw else orjson.loads(value)


class Producer:
    async def flush(self) -> None:
        """Every `send` above is stored when it returns: nothing is in flight."""


class Consumer:
    def highwater(self, tp: Any) -> int | None:
        return None  # no backlog seen: alignment never pauses a partition


@dataclass
class App:
    producer: Producer = field(default_factory=Producer)
    consumer: Consumer = field(default_factory=Consumer)
    rebalancing: bool = False
    in_recovery: bool = False


class InMemoryWorker:
    """One worker owning every partition, fed a story's messages in arrival order."""

    def __init__(
        self,
        config: JourneyConfig | None = None,
        partitions: int = 4,
        batch: int = 1,
        checkpoint_persons: int = 300,
    ) -> None:
        self.config = config or JourneyConfig()
        self.checkpoint_persons = checkpoint_persons
        self.n = partitions
        self.batch = batch
        partitioner = DefaultPartitioner()
        ids = list(range(partitions))

        def partition_of(key: str) -> int:
            return int(partitioner(key.encode(), ids, ids))

        self.partition_of = partition_of
        self.inputs = {name: Topic(name, 1) for name in TOPICS}
        self.journey = Topic("parcours-journey", partitions)
        self.records = Topic("parcours-records", partitions)
        self.dlq = Topic("parcours-dlq", 1)
        self.devices = Table()
        self.persons = Table(raw=True)
        self.app = App()
        self.wiring = Wiring(
            self.app, self.journey, self.records, self.dlq, partitions, self.config, partition_of
        )
        self.start()
        #: next offset to read, per (topic, partition), for inputs and the journey topic
        self.read: dict[tuple[str, int], int] = defaultdict(int)
        #: messages produced so far, per input topic (one partition each)
        self.produced: dict[str, int] = {}
        #: the clock: the newest event time read so far (module doc)
        self.clock_ms = -END_OF_TIME_MS

    def start(self) -> None:
        """(Re)start the stages on what the tables' changelogs hold, as after a restart."""
        self.devices.recover()
        self.persons.recover()
        self.identify = IdentifyStage(self.wiring, self.devices, TOPICS, 10.0, 120.0)
        self.stage = JourneyStage(
            self.wiring,
            self.persons,
            input_sources=[f"{t}/0" for t in TOPICS],
            checkpoint_persons=self.checkpoint_persons,
        )

    def feed(
        self, messages: Iterable[tuple[str, bytes]], kill_after: Iterable[int] = (), lose: int = 0
    ) -> None:
        """Produce the messages (keyed as `parcours produce` keys them) and run the stages
        over them in the order they were produced across topics. `kill_after`: after those
        input steps the worker is killed and started again (`kill`), losing the last `lose`
        state writes of each journey partition."""
        arrival: list[Message] = []
        for topic, value in messages:
            self.inputs[topic].append(message_key(orjson.loads(value)), value, 0)
            arrival.append(self.inputs[topic].log[0][-1])
        asyncio.run(self._run(arrival, set(kill_after), lose))

    async def _run(self, arrival: list[Message], kill_after: set[int], lose: int) -> None:
        """Read the inputs a few messages at a time, each step followed by the journey topic
        read to its end; then the end of input."""
        for i in range(0, len(arrival), self.batch):
            chunk = arrival[i : i + self.batch]
            for m in chunk:  # produced now (the ones after it are not yet)
                self.produced[m.topic] = m.offset + 1
            await self.identify.process([Delivery(m) for m in chunk])
            for m in chunk:
                self.read[m.topic, 0] = max(self.read[m.topic, 0], m.offset + 1)
                self.clock_ms = max(self.clock_ms, self._newest(m))
            await self._idle(self.clock_ms - self.config.grace_ms)
            await self._drain_journey()
            if i in kill_after:
                self.kill(lose)
        self.produced = {name: len(topic.log[0]) for name, topic in self.inputs.items()}
        await self._idle(END_OF_TIME_MS)  # the end of the input: every partition goes quiet
        await self._drain_journey()

    def kill(self, lose: int) -> None:
        """SIGKILL and restart: the stages' memory is gone, the last `lose` changelog writes
        of each journey partition never reached Kafka (outputs are always flushed before any
        state write, so any suffix of them is a possible crash), and the journey topic is read
        again from its start (the committed offsets may lag the checkpoints arbitrarily)."""
        for entries in self.persons.changelog.values():
            del entries[max(0, len(entries) - lose) :]
        self.start()
        for q in range(self.n):
            self.read[self.journey.name, q] = 0

    def _newest(self, m: Message) -> int:
        source = f"{m.topic}/{m.partition}"
        return self.identify.newest.get(source, -END_OF_TIME_MS)

    async def _idle(self, wm: int) -> None:
        """Each input partition read to its end declares its watermark: the clock's, as the
        identify stage declares an idle partition's (streams/worker/identify_stage.py)."""
        for name in self.inputs:
            if self.read[name, 0] < self.produced.get(name, 0):
                continue
            source = f"{name}/0"
            own = self._newest(Message(name, 0, 0, None, b"", 0.0)) - self.config.grace_ms
            tell = orjson.dumps({"kind": "watermark", "src": source, "wm": max(wm, own)})
            for q in range(self.n):
                await self.journey.send(value=tell, partition=q)

    async def _drain_journey(self) -> None:
        """Every journey partition reads what it has, until no partition has anything left."""
        while True:
            progressed = False
            for q in range(self.n):
                log = self.journey.log[q]
                start = self.read[self.journey.name, q]
                if start >= len(log):
                    continue
                batch = log[start : start + self.batch]
                self.read[self.journey.name, q] = start + len(batch)
                await self.stage.process([Delivery(m) for m in batch])
                progressed = True
            if not progressed:
                return

    def outputs(self) -> list[Record | RejectedInput]:
        """Everything sent to the records topic, in partition order."""
        found: list[Record | RejectedInput] = []
        for q in sorted(self.records.log):
            for m in self.records.log[q]:
                found.extend(outputs_from_bytes(m.value))
        return found
