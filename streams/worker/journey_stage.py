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

Crash safety is streams/worker/checkpoint.py: outputs first, then one atomic checkpoint
record per partition and batch, and inputs at or below the checkpoint's offset are skipped.
"""

from __future__ import annotations

import heapq
import time
from bisect import insort
from typing import Any

import orjson

from streams import metrics
from streams.core.aggregates import AggregateState, aggregate_step, flush_aggregates
from streams.core.codec import (
    message_from_dict,
    message_to_dict,
    minute_buckets,
    person_from_dict,
    person_to_dict,
)
from streams.core.config import MINUTE_MS
from streams.core.identity import Duplicate, LinkNotice, Routed
from streams.core.journey import Handover, PersonState, advance, journey_step, next_deadline
from streams.core.revise import Retract, revision_kind
from streams.core.watermarks import WatermarkTracker
from streams.worker.checkpoint import (
    JourneyPartition,
    checkpoint_key,
    internal_partition,
    is_internal_key,
    minute_key,
    partition_from_dict,
    partition_to_dict,
)
from streams.worker.identify_stage import Wiring, processing_failure, reject
from streams.worker.messages import record_to_bytes, routed_from_dict
from streams.worker.outbox import Outbox

NON_STR = orjson.OPT_NON_STR_KEYS


def person_key(msg: Routed | LinkNotice | Handover) -> str:
    if isinstance(msg, Routed):
        return msg.person_id
    if isinstance(msg, LinkNotice):
        return msg.anon_person_id
    return msg.into_person


class JourneyStage:
    def __init__(
        self,
        wiring: Wiring,
        persons: Any,
        input_sources: list[str],
        checkpoint_persons: int,
    ) -> None:
        self.w = wiring
        self.persons = persons
        self.input_sources = input_sources
        self.checkpoint_persons = checkpoint_persons
        self.parts: dict[int, JourneyPartition] = {}

    # -- state ------------------------------------------------------------------------------

    def person_state(self, key: str) -> PersonState | None:
        stored = self.persons.data.get(key)
        if isinstance(stored, dict):
            stored = person_from_dict(stored)
            self.persons.data[key] = stored
        return stored

    def peers_of(self, p: int) -> list[str]:
        return [f"journey/{q}" for q in range(self.w.partitions) if q != p]

    def restore(self, p: int, now: float) -> JourneyPartition:
        """After a (re)start or rebalance: the last checkpoint wins over per-person writes."""
        data = self.persons.data
        saved = data.get(checkpoint_key(p))
        if isinstance(saved, bytes):  # written by this process (restored ones are decoded)
            saved = orjson.loads(saved)
        if saved:
            prefix = minute_key(p, 0)[:-1]
            minutes = {
                int(k[len(prefix) :]): v
                for k, v in data.items()
                if isinstance(k, str) and k.startswith(prefix)
            }
            for minute, rows in saved["minutes"].items():
                if rows is None:
                    minutes.pop(int(minute), None)
                else:
                    minutes[int(minute)] = rows
            part = partition_from_dict(p, saved, minutes, now)
            for key, value in saved["persons"].items():
                data[key] = value  # a dict, or None: decoded lazily
                if value is None:
                    data.pop(key, None)
            # re-written with the next checkpoint, in case their own writes were cut off
            part.touched.update(saved["persons"])
            part.touched_minutes.update(int(m) for m in saved["minutes"])
            part.changed = True
        else:
            tracker = WatermarkTracker(idle_after_s=None)
            tracker.expect(self.input_sources, now)
            part = JourneyPartition(p, tracker, AggregateState(shard=f"journey-{p}"))
        # Idleness is declared upstream (the identify stage), never guessed here from a pause.
        part.tracker.idle_after_s = part.peers.idle_after_s = None
        part.peers.expect(self.peers_of(p), now)
        for key in list(data.keys()):
            if is_internal_key(key) or self.w.partition_of(key) != p:
                continue
            state = self.person_state(key)
            if state is not None and state.session is not None:
                part.open_sessions.add(key)
            if state is not None and state.checkout is not None:
                part.open_checkouts.add(key)
            deadline = next_deadline(state, self.w.config) if state is not None else None
            if deadline is not None:
                part.due[key] = deadline
                heapq.heappush(part.due_heap, (deadline, key))
        return part

    def store(self, part: JourneyPartition, key: str, state: PersonState | None) -> None:
        part.touched.add(key)
        if state is not None and state.session is not None:
            part.open_sessions.add(key)
        else:
            part.open_sessions.discard(key)
        if state is not None and state.checkout is not None:
            part.open_checkouts.add(key)
        else:
            part.open_checkouts.discard(key)
        if state is None:
            self.persons.data.pop(key, None)
            part.due.pop(key, None)
            return
        self.persons.data[key] = state
        deadline = next_deadline(state, self.w.config)
        if deadline is None:
            part.due.pop(key, None)
        elif part.due.get(key) != deadline:
            part.due[key] = deadline
            heapq.heappush(part.due_heap, (deadline, key))

    # -- processing -------------------------------------------------------------------------

    async def process(self, batch: list[Any]) -> None:
        now = time.time()
        outbox = Outbox()
        for event in batch:
            m = event.message
            part = self.parts.get(m.partition)
            if part is None:
                part = self.parts[m.partition] = self.restore(m.partition, now)
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
                    await self._apply(part, item, now, outbox)
                except Exception as exc:  # one bad input must never stop the stream
                    await reject(self.w, outbox, processing_failure(exc, m, None), m, repr(exc))
                await self._maybe_advance(part, now, outbox)
            if len(part.touched) >= self.checkpoint_persons:
                await self.checkpoint([part], outbox)
        for part in self.parts.values():
            self._broadcast(part, now, outbox)
        await self.checkpoint([q for q in self.parts.values() if q.changed or q.touched], outbox)

    def watermark(self, part: JourneyPartition, now: float) -> int:
        own = part.tracker.watermark(now)
        return min(own, part.peers.watermark(now)) if part.peers.upstreams else own

    async def _apply(
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
        watermark = self.watermark(part, now)
        if kind == "handover" and data.get("hold_until", watermark) > watermark:
            self._hold(part, data["hold_until"], data)
            return
        if kind == "event":
            msg: Routed | LinkNotice | Handover = routed_from_dict(data, watermark)
        else:
            msg = message_from_dict(data)
            if isinstance(msg, LinkNotice):
                # the watermark of the link's input partition (the anonymous person's only one)
                msg = LinkNotice(
                    msg.anon_person_id, msg.customer_id, msg.device_id, msg.linked_at_ms, data["wm"]
                )
        key = person_key(msg)
        state, outputs = journey_step(self.person_state(key), msg, self.w.config)
        self.store(part, key, state)
        link_watermark = data["wm"] if isinstance(msg, LinkNotice) else None
        self._emit(part, outputs, outbox, link_watermark)

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
            msg = message_from_dict(data)
            key = person_key(msg)
            state = self.person_state(key)
            if state is not None:
                state, outputs = advance(state, at, self.w.config)
                self.store(part, key, state)
                self._emit(part, outputs, outbox)
            state, outputs = journey_step(self.person_state(key), msg, self.w.config)
            self.store(part, key, state)
            self._emit(part, outputs, outbox)

    async def _maybe_advance(self, part: JourneyPartition, now: float, outbox: Outbox) -> None:
        watermark = self.watermark(part, now)
        if part.held:
            self._release_held(part, watermark, outbox)
        if watermark // MINUTE_MS > part.advanced_to // MINUTE_MS:
            part.advanced_to = watermark
            self._advance(part, watermark, outbox)

    def _emit(
        self,
        part: JourneyPartition,
        outputs: list[Any],
        outbox: Outbox,
        link_watermark: int | None = None,
    ) -> None:
        config = self.w.config
        for out in outputs:
            if isinstance(out, Handover):
                body = message_to_dict(out)
                partition = self.w.partition_of(out.into_person)
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
            elif isinstance(out, Duplicate):
                metrics.EVENTS_DUPLICATE.inc()
            elif isinstance(out, Retract):  # a revision took it back: out of the totals
                aggregate_step(part.aggregates, out.record, config, -1)
                metrics.REVISIONS.labels(revision_kind(out)).inc()
            else:
                aggregate_step(part.aggregates, out, config)
                outbox.add(self.w.records_topic, part.partition, record_to_bytes(out))
        metrics.observe_records(outputs, time.time())

    def _advance(self, part: JourneyPartition, watermark: int, outbox: Outbox) -> None:
        due: list[str] = []
        heap = part.due_heap
        while heap and heap[0][0] <= watermark:
            deadline, key = heapq.heappop(heap)
            if part.due.get(key) == deadline:
                del part.due[key]  # re-scheduled by `store` with its next deadline
                due.append(key)
        for key in due:
            state = self.person_state(key)
            if state is None:
                part.due.pop(key, None)
                continue
            state, outputs = advance(state, watermark, self.w.config)
            self.store(part, key, state)
            self._emit(part, outputs, outbox)
        minutes_before = set(part.aggregates.minutes)
        _, rows = flush_aggregates(part.aggregates, watermark, self.w.config)
        part.touched_minutes.update(minutes_before - set(part.aggregates.minutes))
        part.touched_minutes.update(row.minute_ms for row in rows)
        for row in rows:
            outbox.add(self.w.records_topic, part.partition, record_to_bytes(row))
        metrics.WATERMARK.set(watermark / 1000)
        metrics.OPEN_SESSIONS.set(sum(len(q.open_sessions) for q in self.parts.values()))
        metrics.OPEN_CHECKOUTS.set(sum(len(q.open_checkouts) for q in self.parts.values()))

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
        """Outputs sent and acknowledged, then one atomic checkpoint record per partition, then
        the per-person and per-minute writes (see streams/worker/checkpoint.py)."""
        await outbox.send()
        await self.w.app.producer.flush()
        persons = self.persons
        for part in dirty:
            # each state serialised once: the bytes go into the checkpoint record (as orjson
            # fragments) and into the state's own write
            states: dict[str, bytes | None] = {}
            for key in part.touched:
                state = persons.data.get(key)
                if isinstance(state, PersonState):
                    state = person_to_dict(state)
                states[key] = None if state is None else orjson.dumps(state)
            p, aggregates = part.partition, part.aggregates
            minutes = {m: minute_buckets(aggregates, m) for m in part.touched_minutes}
            minutes.update({m: minute_buckets(aggregates, m) for m in aggregates.dirty})
            record = {
                **partition_to_dict(part),
                "persons": {
                    k: None if v is None else orjson.Fragment(v) for k, v in states.items()
                },
                "minutes": minutes,
            }
            raw_record = orjson.dumps(record, option=NON_STR)
            persons.data[checkpoint_key(p)] = raw_record  # decoded only if restored from here
            persons.send_changelog(p, checkpoint_key(p), raw_record, None, "raw")
            for key, value in states.items():
                persons.send_changelog(p, key, value, None, "raw")
            for m, rows in minutes.items():
                key = minute_key(p, m)
                if rows is None:
                    persons.data.pop(key, None)
                else:
                    persons.data[key] = rows
                persons.send_changelog(
                    p, key, None if rows is None else orjson.dumps(rows), None, "raw"
                )
            part.touched.clear()
            part.touched_minutes.clear()
            part.changed = False

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
