"""The journey stage: sessions, checkout attempts, friction and aggregates, keyed by person.

Intuition: every journey input of a person lands on the partition of that person, whose owner
holds the person's state (table `persons`) and runs the core's `journey_step` on it. Event time
advances per partition; when its watermark enters a new minute, every person whose deadline it
passed is advanced (sessions and checkout attempts close), and aggregate minutes are written.

Watermark of a journey partition P (the rule, with `idle_after_s` from the settings):
- P's *input watermark* is the minimum over the input partitions of their watermarks, as
  carried by journey inputs and by the identify stage's per-batch broadcasts, leaving out input
  partitions silent for `idle_after_s` (streams/core/watermarks.py).
- P broadcasts its input watermark to the other journey partitions after each batch, after the
  hand-overs that batch produced.
- P's watermark is the minimum of its input watermark and the other journey partitions'
  broadcasts (again leaving out those silent for `idle_after_s`).
Why: a login on device d links d's anonymous person A (partition P) to customer C (partition
Q); A's open session reaches Q as a Handover that P sends when it processes the LinkNotice.
Q must not close C's session before that Handover is in, or one visit becomes two sessions. The
Handover is sent before P's next broadcast, in the same partition order, and P's broadcast
covers the LinkNotice's input; so once Q's watermark (bounded by P's broadcast) passes C's
deadline, the Handover has arrived. Broadcasts carry input watermarks only, never derived
ones, so partitions never wait on each other in a cycle. When P is Q, no broadcast bounds Q by
itself, so the stage keeps that Handover itself instead of sending it round the journey topic.

A Handover then waits (in the partition's checkpointed `held` list) until Q's watermark reaches
the watermark of the login's input partition at the time of the link, and C is advanced to
that time before it is applied: the merge is decided on C's state as of the link, as in the
embedded runner, not on whatever subset of C's events happened to be applied when it arrived.

This stage is a thin driver: each journey partition's persons, deadlines and aggregates are
one `JourneyPipeline` (the `streams.core.runtime.JourneyLogic` the embedded runner drives),
fed journey inputs with `deliver` and moved with `advance`. What is here is only what Kafka
adds: reading packed messages, watermarks across partitions, holding hand-overs, sending
outputs and checkpointing (streams/worker/checkpoint.py: outputs first, then one atomic
checkpoint record per partition and commit, and inputs at or below its offset are skipped).
"""

from __future__ import annotations

import logging
import time
from bisect import insort
from collections.abc import Sequence
from typing import Any

import orjson

from streams import metrics
from streams.core.codec import message_from_dict, message_to_dict
from streams.core.config import MINUTE_MS
from streams.core.identity import LinkNotice, Routed
from streams.core.journey import Handover, JourneyInput
from streams.core.pipeline import END_OF_TIME_MS
from streams.core.records import MinuteAggregate, Record
from streams.privacy.errors import PrivacyUnavailable
from streams.worker.checkpoint import (
    JourneyPartition,
    checkpoint_key,
    commit,
    internal_partition,
    is_internal_key,
    restore_partition,
)
from streams.worker.identify_stage import Wiring, processing_failure, reject
from streams.worker.messages import record_to_bytes, routed_from_dict
from streams.worker.outbox import Outbox

log = logging.getLogger(__name__)


class JourneyStage:
    def __init__(
        self,
        wiring: Wiring,
        persons: Any,
        input_sources: list[str],
        checkpoint_persons: int,
    ) -> None:
        self.w = wiring
        #: the Faust table whose changelog carries the checkpoints (its store is read once,
        #: when a partition is restored; the runtime holds the state)
        self.persons = persons
        self.input_sources = input_sources
        self.checkpoint_persons = checkpoint_persons
        self.parts: dict[int, JourneyPartition] = {}
        #: the batch's records, counted in Prometheus once per batch (a tally per call is costly)
        self.emitted: list[Record] = []

    def peers_of(self, p: int) -> list[str]:
        return [f"journey/{q}" for q in range(self.w.partitions) if q != p]

    def restore(self, p: int, now: float) -> JourneyPartition:
        """After a (re)start or rebalance: the partition's state from its changelog."""
        part = restore_partition(
            p,
            self.persons.data,
            lambda key: bool(self.w.partition_of(key) == p),
            self.w.config,
            self.input_sources,
            now,
        )
        # Idleness is declared upstream (the identify stage), never guessed here from a pause.
        part.tracker.idle_after_s = part.peers.idle_after_s = None
        part.peers.expect(self.peers_of(p), now)
        return part

    # -- processing -------------------------------------------------------------------------

    async def process(self, batch: Sequence[Any]) -> None:
        now = time.time()
        outbox = Outbox()
        erasure = self.w.erasure
        if erasure is not None:
            erasure.poll()
            for owned in list(self.parts.values()):
                await self.erase_suppressed(owned)
        for event in batch:
            m = event.message
            part = self.parts.get(m.partition)
            if part is None:
                part = self.parts[m.partition] = self.restore(m.partition, now)
                await self.erase_suppressed(part)
            if m.offset <= part.applied:
                continue  # in the restored checkpoint: effects kept, outputs acknowledged
            part.applied, part.changed = m.offset, True
            try:
                data = orjson.loads(m.value)
                items = data if isinstance(data, list) else [data]
            except orjson.JSONDecodeError as exc:
                await reject(self.w, outbox, processing_failure(exc, m, None), m, repr(exc))
                continue
            for item in items:
                try:
                    self._apply(part, item, now, outbox)
                except Exception as exc:  # one bad input must never stop the stream
                    await reject(self.w, outbox, processing_failure(exc, m, None), m, repr(exc))
                self._maybe_advance(part, now, outbox)
            touched = part.logic.touched
            if touched is not None and len(touched) >= self.checkpoint_persons:
                await self.checkpoint([part], outbox)
        for part in self.parts.values():
            self._broadcast(part, now, outbox)
        await self.checkpoint([q for q in self.parts.values() if q.changed], outbox)
        self._report_watermark()
        if self.emitted:
            metrics.observe_records(self.emitted, time.time())
            self.emitted = []

    def _report_watermark(self) -> None:
        """The process's watermark gauge: the lowest its journey partitions have applied, set
        once their outputs are acknowledged (after `checkpoint`). When it reads T, every
        partition has advanced to T and what T concluded is in the records topic: what an
        operator, or a test stopping the worker, can rely on. Set by the partition that had
        just advanced, before its records were sent, it told neither (the 10-hours-late
        store batch test stopped the worker on it with conclusions still unsent)."""
        if not self.parts:
            return
        lowest = min(q.logic.watermark_ms for q in self.parts.values())
        if lowest > -END_OF_TIME_MS:  # every partition has heard of some event time
            metrics.WATERMARK.set(lowest / 1000)

    async def erase_suppressed(self, part: JourneyPartition) -> None:
        """Erase the subjects suppressed since the partition was last cleaned, from its state
        and its changelog partition (streams/worker/erasure.py). Called before the batch
        applies anything to the partition, so the state it writes is never ahead of the
        outputs sent (streams/worker/checkpoint.py, rule 1)."""
        erasure = self.w.erasure
        if erasure is None or part.suppressions >= erasure.generation:
            return
        topic = self.persons.changelog_topic.get_topic_name()
        try:
            removed = await erasure.erase_journey(part, self.persons, topic)
        except PrivacyUnavailable as exc:  # transient: done again before the next batch
            log.warning("journey partition %d: erasure not done yet: %s", part.partition, exc)
            return
        log.warning(
            "journey partition %d: erased %d entries naming suppressed subjects; changelog "
            "rewritten and purged",
            part.partition,
            removed,
        )

    def watermark(self, part: JourneyPartition, now: float) -> int:
        own = part.tracker.watermark(now)
        return min(own, part.peers.watermark(now)) if part.peers.upstreams else own

    def _apply(
        self, part: JourneyPartition, data: dict[str, Any], now: float, outbox: Outbox
    ) -> None:
        kind = data["kind"]
        if kind == "tick":
            return
        src = data.get("src")
        if src is not None:
            tracker = part.peers if src.startswith("journey/") else part.tracker
            tracker.observe(src, data["wm"], now)
        if kind == "watermark":
            return
        erasure = self.w.erasure
        if erasure is not None and erasure.privacy.suppressed and erasure.drop_item(data):
            return  # sent before its subject was suppressed; erased, it must not come back
        watermark = self.watermark(part, now)
        if data.get("hold_until", watermark) > watermark:  # a hand-over, or an event after it
            self._hold(part, data["hold_until"], data)
            return
        if kind == "event":
            msg: JourneyInput = routed_from_dict(data, watermark)
        else:
            msg = message_from_dict(data)
            if isinstance(msg, LinkNotice):
                # the watermark of the link's input partition (the anonymous person's only one)
                msg = LinkNotice(
                    msg.anon_person_id, msg.customer_id, msg.device_id, msg.linked_at_ms, data["wm"]
                )
        records, handovers = part.logic.deliver(msg)
        self._emit(part, records, outbox)
        link_watermark = data["wm"] if isinstance(msg, LinkNotice) else None
        self._route(part, handovers, outbox, link_watermark)

    @staticmethod
    def _hold(part: JourneyPartition, hold_until: int, data: dict[str, Any]) -> None:
        """Keep a hand-over until the partition's watermark reaches `hold_until`. The list is
        sorted by (watermark, arrival): applied in that order, checked at the head only."""
        entry = (hold_until, part.applied, len(part.held), data)
        insort(part.held, entry, key=lambda h: (h[0], h[1]))  # ties: arrival order

    def _release_held(self, part: JourneyPartition, watermark: int, outbox: Outbox) -> None:
        """Apply the hand-overs the watermark has reached, each at its own time.

        A hand-over is the anonymous side of a login, as it stood when event time on the
        login's input partition was `hold_until`. Applying it then (the customer advanced to
        that time first, later events still waiting) makes the merge decision on the same
        state as the embedded runner, whatever order the partitions' messages came in: a
        customer whose own events are still waiting must not judge two visits unrelated
        because the events joining them have not been applied yet.
        """
        if part.held[0][0] > watermark:  # kept sorted: the earliest is first
            return
        due = [h for h in part.held if h[0] <= watermark]
        part.held = part.held[len(due) :]
        for at, _, _, data in due:
            records, handovers = part.logic.deliver(message_from_dict(data), at_ms=at)
            self._emit(part, records, outbox)
            self._route(part, handovers, outbox)

    def _maybe_advance(self, part: JourneyPartition, now: float, outbox: Outbox) -> None:
        """As `JourneyPipeline.process` moves its own watermark: advance on entering a new
        minute, otherwise only note it."""
        watermark = self.watermark(part, now)
        if part.held:
            self._release_held(part, watermark, outbox)
        logic = part.logic
        if watermark // MINUTE_MS > logic.watermark_ms // MINUTE_MS:
            minutes_before = set(logic.aggregates.minutes)
            records = logic.advance(watermark)
            part.touched_minutes.update(minutes_before - set(logic.aggregates.minutes))
            part.touched_minutes.update(r.minute_ms for r in records if type(r) is MinuteAggregate)
            self._emit(part, records, outbox)
        elif watermark > logic.watermark_ms:
            logic.watermark_ms = watermark

    def _emit(self, part: JourneyPartition, records: list[Record], outbox: Outbox) -> None:
        if not records:
            return
        topic, p = self.w.records_topic, part.partition
        for record in records:
            outbox.add(topic, p, record_to_bytes(record))
        self.emitted.extend(records)

    def _route(
        self,
        part: JourneyPartition,
        onward: list[Handover | Routed],
        outbox: Outbox,
        link_watermark: int | None = None,
    ) -> None:
        """Hand-overs, and the events a late login moves to the customer after them: held
        here when the customer is on this partition, else sent to its partition, both in
        order and at the link's watermark (the receiver holds them until it gets there)."""
        for msg in onward:
            body = message_to_dict(msg)
            person = msg.into_person if isinstance(msg, Handover) else msg.person_id
            partition = self.w.partition_of(person)
            if partition == part.partition:
                # Kept here: sent through the journey topic, it would queue behind every
                # input already there, whose watermarks could pass the customer's visit
                # before it is read back (no peer broadcast bounds a partition by itself).
                at = -(2**62) if link_watermark is None else link_watermark
                self._hold(part, at, body)
                continue
            if link_watermark is not None:
                body["hold_until"] = link_watermark
            outbox.add(self.w.journey_topic, partition, orjson.dumps(body))

    def _broadcast(self, part: JourneyPartition, now: float, outbox: Outbox) -> None:
        """Tell the other journey partitions this one's input watermark (after its hand-overs),
        whenever it moved."""
        own = part.tracker.watermark(now)
        if own == part.told_wm and part.told_at:
            return
        part.told_wm, part.told_at = own, now
        tell = orjson.dumps({"kind": "watermark", "src": f"journey/{part.partition}", "wm": own})
        for q in range(self.w.partitions):
            if q != part.partition:
                outbox.add(self.w.journey_topic, q, tell)

    async def checkpoint(self, dirty: list[JourneyPartition], outbox: Outbox) -> None:
        """Outputs sent and acknowledged, then per partition the previous checkpoint's entries
        not carried again, then the checkpoint record (streams/worker/checkpoint.py)."""
        await outbox.send()
        await self.w.app.producer.flush()
        for part in dirty:
            self._report(part)
            p = part.partition
            spill, record = commit(part)
            for key, value in spill.items():
                self.persons.send_changelog(p, key, value, None, "raw")
            self.persons.send_changelog(p, checkpoint_key(p), record, None, "raw")

    def _report(self, part: JourneyPartition) -> None:
        """The runtime's duplicate and revision counts since the last report, to Prometheus."""
        counters = part.logic.counters
        if counters.duplicates > part.reported_duplicates:
            metrics.EVENTS_DUPLICATE.inc(counters.duplicates - part.reported_duplicates)
            part.reported_duplicates = counters.duplicates
        for kind, n in counters.revisions.items():
            done = part.reported_revisions.get(kind, 0)
            if n > done:
                metrics.REVISIONS.labels(kind).inc(n - done)
                part.reported_revisions[kind] = n

    def gauges(self) -> None:
        """Open sessions and checkout attempts (counted on each tick, not per event)."""
        metrics.OPEN_SESSIONS.set(sum(q.logic.open_sessions for q in self.parts.values()))
        metrics.OPEN_CHECKOUTS.set(sum(q.logic.open_checkouts for q in self.parts.values()))

    def forget(self, partition: int) -> None:
        """Journey partition revoked: its state now belongs to its new owner. Dropping our copy
        makes a later re-assignment restore it from the changelog, not from a stale memory."""
        self.parts.pop(partition, None)
        for key in list(self.persons.data.keys()):
            internal = is_internal_key(key)
            if (internal and internal_partition(key) == partition) or (
                not internal and self.w.partition_of(key) == partition
            ):
                self.persons.data.pop(key, None)
