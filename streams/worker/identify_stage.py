"""The identify stage: decode input messages and resolve identity, keyed by device.

Intuition: the input topics are keyed by device, so every event of a device reaches the same
stage instance, which holds that device's link history (table `devices`). Each valid event
leaves routed to its person on the journey topic; each rejection goes to the dead-letter topic
with its original bytes. Journey inputs are packed per journey partition (streams/worker/
outbox.py), so the person key decides the partition here, not Kafka's partitioner.

Watermarks: an input partition's watermark is its newest event time minus the grace period.
It rides on every journey input and, at the end of each batch, is broadcast to *every* journey
partition (an item `{"kind": "watermark"}` after the batch's inputs): a journey partition that
received nothing from this input partition for a while still learns that time has passed.

Idleness is declared here, by the one stage that can tell a quiet partition from a slow
worker: an input partition is idle when everything in it is processed (not merely fetched:
see streams/worker/input_ends.py) and nothing new came for `idle_after_s`. Its watermark then
follows the wall clock (now - idle_after_s - grace), broadcast on each tick, so a quiet
partition never holds results back and the end of a finite input closes everything. A paused
or busy worker (a rebalance, a slow machine) declares nothing, so its partitions hold the
watermark where it is: downstream never mistakes a pause for silence.

Alignment: replaying a backlog, the consumer reads partitions at rates unrelated to their
event times, and every event of a partition that runs ahead waits, in the journey stage's
state, for the slowest one. So an input partition with unread data more than `align_skew_s` of
event time ahead of this worker's slowest one is paused (the Kafka client stops fetching it)
until the slowest catches up (streams/core/watermarks.py `aligned_pauses`). Messages already
fetched are still processed, so a partition can run ahead by one fetch of it (README).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from faust.types import TP

from schemas import Event, Rejection, RejectReason, decode
from streams import metrics
from streams.core.codec import device_from_dict, device_to_dict, message_to_dict
from streams.core.config import JourneyConfig
from streams.core.identity import (
    DeviceIdentity,
    Duplicate,
    LinkNotice,
    Routed,
    identity_step,
    prune_device,
)
from streams.core.records import IdentityLink
from streams.core.watermarks import aligned_pauses
from streams.privacy.policy import PrivacyFilter
from streams.sinks.base import RejectedInput
from streams.worker.erasure import Erasure
from streams.worker.faust_internals import consumer_thread, reconcile_pauses
from streams.worker.input_ends import TRAILING_MARKERS_MAX, InputEnd, InputEnds
from streams.worker.messages import (
    dlq_headers,
    record_to_bytes,
    rejected_message_to_bytes,
    rejected_to_bytes,
)
from streams.worker.outbox import Outbox, PartitionedTopic

#: Positions along an input partition: offset * 65536 + index in the message's JSON array.
ARRAY_SLOTS = 65536


log = logging.getLogger(__name__)


@dataclass
class Wiring:
    """What the stages send to and store in (Faust objects, typed loosely on purpose)."""

    app: Any
    journey_topic: PartitionedTopic
    records_topic: PartitionedTopic
    dlq_topic: Any
    partitions: int
    config: JourneyConfig
    partition_of: Any  # person or device key -> partition, as the producer's partitioner
    #: Applied to everything decoded (scrubbing, pseudonymisation; streams/privacy/policy.py).
    privacy: PrivacyFilter | None = None
    #: The suppression list from its topic, and the erasure of the state it names
    #: (streams/worker/erasure.py); None: no suppression topic (tests without a broker).
    erasure: Erasure | None = None


def processing_failure(exc: Exception, message: Any, event_id: str | None) -> Rejection:
    """An exception while processing one input: that input goes to the DLQ, the stream goes on."""
    return Rejection(
        RejectReason.INVALID_VALUE,
        f"processing failed: {exc!r}",
        None,
        message.topic,
        message.value,
        None,
        event_id,
    )


async def reject(
    wiring: Wiring, outbox: Outbox, rejection: Rejection, message: Any, error: str = ""
) -> None:
    """To the dead-letter topic (original bytes, Connect-style headers) and `rejected_events`."""
    metrics.EVENTS_REJECTED.labels(message.topic, str(rejection.reason)).inc()
    metrics.DLQ_MESSAGES.labels(message.topic, str(rejection.reason)).inc()
    headers = dlq_headers(rejection, message.topic, message.partition, message.offset, error)
    await wiring.dlq_topic.send(key=message.key, value=message.value, headers=headers)
    item = RejectedInput(
        rejection,
        f"kafka:{message.topic}/{message.partition}",
        message.offset,
        int(message.timestamp * 1000),
    )
    outbox.add(wiring.records_topic, message.partition % wiring.partitions, rejected_to_bytes(item))


async def reject_message(
    wiring: Wiring, outbox: Outbox, rejections: list[Rejection], message: Any
) -> None:
    """Every rejection of one message: one DLQ message (its original bytes once, the first
    reason in the headers and how many of its elements were rejected) and one records-topic
    item. Before issue 12 each rejected element sent a full copy of the message to both."""
    for rejection in rejections:
        metrics.EVENTS_REJECTED.labels(message.topic, str(rejection.reason)).inc()
    metrics.DLQ_MESSAGES.labels(message.topic, str(rejections[0].reason)).inc()
    headers = dlq_headers(rejections[0], message.topic, message.partition, message.offset)
    counts = Counter(str(r.reason) for r in rejections)
    headers.append(("parcours.rejections", str(len(rejections)).encode()))
    headers.append(("parcours.reason_counts", orjson.dumps(dict(sorted(counts.items())))))
    # the message's bytes as the rejections carry them: scrubbed when scrubbing is on
    await wiring.dlq_topic.send(key=message.key, value=rejections[0].raw, headers=headers)
    source = f"kafka:{message.topic}/{message.partition}"
    received = int(message.timestamp * 1000)
    items = [RejectedInput(r, source, message.offset, received) for r in rejections]
    outbox.add(
        wiring.records_topic,
        message.partition % wiring.partitions,
        rejected_message_to_bytes(items),
    )


def _suppressed(privacy: PrivacyFilter | None) -> int:
    """Inputs the filter has dropped so far (erased subjects)."""
    if privacy is None:
        return 0
    return privacy.counts.suppressed_events + privacy.counts.suppressed_rejections


class IdentifyStage:
    def __init__(
        self,
        wiring: Wiring,
        devices: Any,
        topic_map: dict[str, str],
        idle_after_s: float,
        align_skew_s: float,
    ) -> None:
        self.w = wiring
        self.idle_after_s = idle_after_s
        self.align_skew_ms = int(align_skew_s * 1000)
        self.devices = devices
        self.topic_map = topic_map
        #: input partition ("topic/partition") -> newest event time seen
        self.newest: dict[str, int] = {}
        #: device -> the input partition whose changelog holds it (to forget it on revocation)
        self.device_partition: dict[str, int] = {}
        #: input partition -> (next offset to process, wall-clock time of the last message)
        self.position: dict[str, tuple[int, float]] = {}
        self.busy = False
        #: input partition -> its Faust TP; the ones paused by `align`
        self.tps: dict[str, Any] = {}
        self.paused: set[str] = set()
        #: a pause was asked of the Kafka client since it was last reconciled to none
        self.client_may_pause = False
        #: what the ticks saw of each input partition's end (streams/worker/input_ends.py)
        self.ends = InputEnds(idle_after_s)
        #: held while a batch is processed or the state erased: never both at once
        self.lock = asyncio.Lock()

    def device_state(self, device_id: str) -> DeviceIdentity | None:
        stored = self.devices.data.get(device_id)
        if isinstance(stored, dict):
            stored = device_from_dict(stored)
            self.devices.data[device_id] = stored
        return stored if isinstance(stored, DeviceIdentity) else None

    async def process(self, batch: Sequence[Any]) -> None:
        async with self.lock:
            self.busy = True
            try:
                await self.erase_suppressed()
                await self._process(batch)
            finally:
                self.busy = False

    async def erase_when_idle(self) -> None:
        """From the tick: erase newly suppressed subjects even when no input comes."""
        if self.lock.locked():
            return
        async with self.lock:
            await self.erase_suppressed()

    async def erase_suppressed(self) -> None:
        """Erase newly suppressed subjects from the owned devices (streams/worker/erasure.py)."""
        if self.w.erasure is not None:
            await self.w.erasure.erase_device_table(self.w.app, self.devices, self.topic_map)

    async def _process(self, batch: Sequence[Any]) -> None:
        # journey packs of at most 250 inputs: a journey message touches at most 250 persons
        # before the journey stage may checkpoint (it checkpoints between messages)
        outbox = Outbox(max_items=250)
        now = time.time()
        dirty: dict[str, tuple[int, str]] = {}
        sources: set[str] = set()
        consumed: Counter[str] = Counter()  # counted once per batch: `labels()` is costly
        suppressed_before = _suppressed(self.w.privacy)
        for event in batch:
            message = event.message
            consumed[message.topic] += 1
            source = f"{message.topic}/{message.partition}"
            self.position[source] = (message.offset + 1, now)
            if source not in self.tps:
                self.tps[source] = TP(message.topic, message.partition)  # the type Faust asserts
            canonical = self.topic_map.get(message.topic, message.topic)
            rejected: list[Rejection] = []
            results = decode(message.value, canonical)
            if self.w.privacy is not None:
                results = self.w.privacy.apply(results)

            for index, result in enumerate(results):
                if isinstance(result, Rejection):
                    rejected.append(result)
                    continue
                try:
                    self._one(result, message, index, dirty, outbox)
                    sources.add(source)
                except Exception as exc:  # one bad event must never stop the stream
                    failure = processing_failure(exc, message, result.event_id)
                    await reject(self.w, outbox, failure, message, repr(exc))
            if rejected:
                await reject_message(self.w, outbox, rejected, message)
        for topic, n in consumed.items():
            metrics.EVENTS_CONSUMED.labels(topic).inc(n)
        suppressed = _suppressed(self.w.privacy) - suppressed_before
        if suppressed:
            metrics.PRIVACY_SUPPRESSED.inc(suppressed)
        for source in sorted(sources):
            tell = orjson.dumps({"kind": "watermark", "src": source, "wm": self._watermark(source)})
            for q in range(self.w.partitions):
                outbox.add(self.w.journey_topic, q, tell)
        await outbox.send()
        await self.w.app.producer.flush()  # outputs acknowledged before any state is written
        self._write_states(dirty)
        await self.align()

    async def align(self, *, reconcile: bool = False) -> None:
        """Pause the input partitions that run ahead of the slowest, resume those caught up.

        Skipped while Faust rebalances or recovers tables: the assignment is changing. The
        Kafka client's pauses are all this stage's (Faust's own pause is only a filter), so
        with `reconcile` (each tick) the client is brought in line with `self.paused` even if
        nothing changed here: a pause that reached the consumer thread just after a rebalance
        would otherwise stay in the client, unknown here, and the partition would never be
        read again (seen once after a restart, with two rebalances in quick succession).
        """
        app = self.w.app
        if getattr(app, "rebalancing", False) or getattr(app, "in_recovery", False):
            return
        backlogged = self._backlogged(app.consumer)
        wanted = aligned_pauses(self.newest, backlogged, self.paused, self.align_skew_ms)
        wanted &= self.tps.keys()
        # a tick reconciles only while the client may hold a pause: none was asked since the
        # last reconcile that left it with none (no thread hop per tick in a steady stream)
        if wanted == self.paused and not (reconcile and self.client_may_pause):
            return
        metrics.INPUT_PAUSES.inc(len(wanted - self.paused))
        self.paused = wanted
        metrics.INPUT_PAUSED.set(len(wanted))
        pause = {self.tps[s] for s in wanted}
        thread = consumer_thread(app)
        self.client_may_pause = bool(pause)
        await thread.call_thread(reconcile_pauses, thread, pause, set(self.topic_map))

    def _backlogged(self, consumer: Any) -> set[str]:
        """Input partitions with messages not processed yet, by the end offsets the fetcher
        last saw (a paused partition's is not refreshed). A few offsets left may be only
        transaction markers, which are never processed: such a partition is not backlogged,
        or it would stay paused, or hold the others paused, for good. At most that many
        records escape alignment."""
        found = set()
        for source, tp in self.tps.items():
            try:
                end = consumer.highwater(tp)
            except Exception:  # not assigned any more (a rebalance under way)
                continue
            processed = self.position.get(source, (0, 0.0))[0]
            if end is not None and end - processed > TRAILING_MARKERS_MAX:
                found.add(source)
        return found

    async def declare_idle(self, ends: dict[tuple[str, int], InputEnd], now: float) -> None:
        """Broadcast a wall-clock watermark for each idle input partition of this worker.

        Idle: read to the end (`read_to_end`) and no message of it processed for
        `idle_after_s`. Called by the tick timer between batches.
        """
        if self.busy:
            return
        await self.align(reconcile=True)
        outbox = Outbox()
        idle_ms = int(self.idle_after_s * 1000)
        for (topic, partition), mark in sorted(ends.items()):
            source = f"{topic}/{partition}"
            if source not in self.position:  # newly assigned: silent from now on, or not
                self.position[source] = (0, now)
                continue
            processed, last_at = self.position[source]
            self.ends.marks[source] = mark
            if now - last_at < self.idle_after_s:
                continue
            if await self.reread_stranded(TP(topic, partition), source, mark):
                continue
            if not self.ends.read_to_end(source, processed, mark, now):
                continue
            wm = int(now * 1000) - idle_ms - self.w.config.grace_ms
            if source in self.newest:
                wm = max(wm, self._watermark(source))
            tell = orjson.dumps({"kind": "watermark", "src": source, "wm": wm})
            for q in range(self.w.partitions):
                outbox.add(self.w.journey_topic, q, tell)
        await outbox.send()

    async def reread_stranded(self, tp: Any, source: str, mark: InputEnd) -> bool:
        """Seek a quiet partition back to what was processed when the Kafka client is past
        records Faust never handed over (streams/worker/input_ends.py)."""
        app = self.w.app
        if getattr(app, "rebalancing", False) or getattr(app, "in_recovery", False):
            return False
        processed = self.position[source][0]
        start = self.ends.stranded(source, processed, mark, source in self.paused)
        if start is None:
            return False
        # a few offsets: most likely transaction markers (routine); more: records stranded
        level = logging.INFO if mark.fetched - start <= TRAILING_MARKERS_MAX else logging.WARNING
        log.log(
            level,
            "input partition %s: fetched to %d, processed to %d and quiet: reading from %d again",
            source,
            mark.fetched,
            start,
            start,
        )
        metrics.INPUT_REREADS.inc()
        await app.consumer.seek(tp, start)
        return True

    def describe(self, source: str, now: float) -> str | None:
        """How far this worker has read an input partition: why it is not idle, if it is not."""
        if source not in self.position:
            return None
        processed, last_at = self.position[source]
        return self.ends.describe(source, processed, now - last_at, source in self.paused)

    def _watermark(self, source: str) -> int:
        return self.newest[source] - self.w.config.grace_ms

    def _one(
        self,
        ev: Event,
        message: Any,
        index: int,
        dirty: dict[str, tuple[int, str]],
        outbox: Outbox,
    ) -> None:
        source = f"{message.topic}/{message.partition}"
        self.newest[source] = max(self.newest.get(source, ev.ts_ms), ev.ts_ms)
        watermark = self._watermark(source)
        state = self.device_state(ev.device_id) if ev.device_id else None
        state, outputs = identity_step(
            state,
            ev,
            self.w.config,
            watermark_ms=watermark,
            received_at_ms=int(message.timestamp * 1000),
            source=source,
            position=message.offset * ARRAY_SLOTS + index,
        )
        if ev.device_id and state is not None:
            self.devices.data[ev.device_id] = state
            dirty[ev.device_id] = (message.partition, source)
            self.device_partition[ev.device_id] = message.partition
        for out in outputs:
            if isinstance(out, Routed | LinkNotice):
                key = out.person_id if isinstance(out, Routed) else out.anon_person_id
                body = message_to_dict(out)
                body["src"], body["wm"] = source, watermark
                outbox.add(self.w.journey_topic, self.w.partition_of(key), orjson.dumps(body))
            elif isinstance(out, IdentityLink):
                partition = message.partition % self.w.partitions
                outbox.add(self.w.records_topic, partition, record_to_bytes(out))
            elif isinstance(out, Duplicate):
                metrics.EVENTS_DUPLICATE.inc()

    def _write_states(self, dirty: dict[str, tuple[int, str]]) -> None:
        for device_id, (p, source) in dirty.items():
            state = self.device_state(device_id)
            if (
                state is not None
                and prune_device(state, self._watermark(source), self.w.config) is None
            ):
                state = None
            if state is None:
                self.devices.data.pop(device_id, None)
                self.device_partition.pop(device_id, None)
                self.devices.send_changelog(p, device_id, None, value_serializer="raw")
            else:
                raw_state = orjson.dumps(device_to_dict(state))
                self.devices.send_changelog(p, device_id, raw_state, value_serializer="raw")

    def forget(self, partition: int) -> None:
        """Input partition revoked: its devices now belong to another worker."""
        for device_id in [d for d, p in self.device_partition.items() if p == partition]:
            self.devices.data.pop(device_id, None)
            self.device_partition.pop(device_id, None)
        for source in [s for s in self.position if s.rsplit("/", 1)[1] == str(partition)]:
            del self.position[source]
            self.tps.pop(source, None)
            self.ends.forget(source)
            self.paused.discard(source)  # the client forgets its pause of a revoked partition
