"""The core steps composed in one process: identity -> journey -> aggregates.

This is the journey runtime the embedded runner drives (`streams.core.runtime.JourneyLogic`):
`process` one event, `next_deadline` / `advance` to a watermark, `provisional` rows for what is
still open, and `snapshot` / `restore` so that the next run carries on where this one stopped.

Intuition: in Faust each step runs in its own agent on its own partitioning (identity by device,
journey by person) and messages travel through topics. Here the same messages travel through a
small in-memory queue instead, in the same order, so the embedded runner and the tests exercise
exactly the logic the workers run. Nothing here does I/O.

Closing is driven by the watermark (newest event time minus grace): whenever it enters a new
minute, every person whose next deadline it has passed is advanced. Deadlines are indexed by
minute, so advancing costs the number of persons due, not the number of persons known. A person
is listed again each time a step moves their deadline, so most listings go stale (an event
pushes the end of the session on); `_listed` keeps each person's earliest listing, and a stale
one is dropped with a dict lookup instead of working the person's deadline out again.
"""

from __future__ import annotations

import heapq
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from schemas import Event
from streams.core.aggregates import AggregateState, aggregate_step, flush_aggregates
from streams.core.config import MINUTE_MS, JourneyConfig
from streams.core.identity import (
    DeviceIdentity,
    Duplicate,
    LinkNotice,
    Routed,
    identity_step,
    prune_device,
)
from streams.core.journey import (
    Handover,
    JourneyInput,
    Output,
    PersonState,
    advance,
    journey_step,
    next_deadline,
    release_waiting,
)
from streams.core.records import EventRow, FrictionSignal, IdentityLink, Record, SessionSummary
from streams.core.revise import Retract, revision_kind
from streams.core.session import PUBLISHED, is_engaged, summarise

#: A watermark beyond any event: used at the end of a finite input to close everything.
END_OF_TIME_MS = 2**62


@dataclass(slots=True)
class PipelineCounters:
    events: int = 0
    duplicates: int = 0
    late: int = 0
    sessions: int = 0
    signals: Counter[str] = field(default_factory=Counter)
    #: Rows a late event's revision replaced or withdrew, by kind (`revision_kind`).
    revisions: Counter[str] = field(default_factory=Counter)


class JourneyPipeline:
    """Feed validated events in arrival order; get storable records back."""

    def __init__(self, config: JourneyConfig | None = None, shard: str = "0") -> None:
        self.config = config or JourneyConfig()
        self.devices: dict[str, DeviceIdentity] = {}
        self.persons: dict[str, PersonState] = {}
        self.aggregates = AggregateState(shard=shard)
        self.counters = PipelineCounters()
        self.max_event_ms: int | None = None
        self.watermark_ms = -END_OF_TIME_MS
        #: minute -> persons whose next deadline falls in it. Lists, not sets (a set costs 216
        #: bytes even for one entry, and most minutes a day ahead hold one or two persons), so
        #: a person may be listed twice; `advance` takes each once, in order.
        self._due: dict[int, list[str]] = {}
        self._due_heap: list[int] = []
        #: person -> the deadline of their earliest listing in `_due`, never after their true
        #: next deadline (listings in other minutes are stale: skipped when their minute comes).
        self._listed: dict[str, int] = {}
        self._devices_pruned_at = -END_OF_TIME_MS
        #: When a set: every person stored since the driver last emptied it (the Faust journey
        #: stage writes each of them to its changelog once per commit). None: not tracked.
        self.touched: set[str] | None = None

    # -- input ----------------------------------------------------------------------------

    def process(self, event: Event, received_at_ms: int | None = None) -> list[Record]:
        """One event through identity and journey; may also close what the watermark passed."""
        out: list[Record] = []
        if self.max_event_ms is None or event.ts_ms > self.max_event_ms:
            self.max_event_ms = event.ts_ms
        watermark = self.max_event_ms - self.config.grace_ms
        if watermark // MINUTE_MS > self.watermark_ms // MINUTE_MS:
            out.extend(self.advance(watermark))
        elif watermark > self.watermark_ms:
            self.watermark_ms = watermark
        received = event.ts_ms if received_at_ms is None else received_at_ms
        key = event.device_id
        state = self.devices.get(key) if key else None
        state, routed = identity_step(
            state, event, self.config, watermark_ms=self.watermark_ms, received_at_ms=received
        )
        if key and state is not None:
            self.devices[key] = state
        self.counters.events += 1
        if len(routed) == 1 and type(routed[0]) is Routed:  # most events: `_drain`, unrolled
            handovers: deque[Any] | None = None
            for result in self._routed(routed[0]):
                if type(result) is Handover:
                    handovers = handovers or deque()
                    handovers.appendleft(result)
                else:
                    self._emit(result, out)
            if handovers:
                self._drain(handovers, out)
        else:
            self._drain(deque(routed), out)
        return out

    def deliver(
        self, msg: JourneyInput, at_ms: int | None = None
    ) -> tuple[list[Record], list[Handover | Routed]]:
        """One journey input whose identity was resolved elsewhere (the Faust journey stage,
        where identity runs in another stage keyed by device). Onward messages (a hand-over,
        then the events a late login moves to the customer) come back to the caller, in
        order, instead of being applied: their person may live on another partition, and even
        on this one the caller decides when they apply. `at_ms`, for a hand-over: the
        receiving person is first advanced to that watermark (the link's), so that the merge
        is decided on its state as of the link, as `process` decides it in one ordered run."""
        out: list[Record] = []
        handovers: list[Handover | Routed] = []
        if at_ms is not None and type(msg) is Handover:
            state = self.persons.get(msg.into_person)
            if state is not None:
                new_state, results = advance(state, at_ms, self.config)
                self._store(msg.into_person, new_state)
                self._drain(deque(results), out, handovers)
        self._drain(deque((msg,)), out, handovers)
        return out, handovers

    def _drain(
        self,
        queue: deque[Any],
        out: list[Record],
        handovers: list[Handover | Routed] | None = None,
    ) -> None:
        """Route messages to their step until none is left (a step may emit a Handover,
        applied here, or given to `handovers` when the caller routes them).

        Dispatch on the exact type (the records are final classes): this runs for every
        message and output, and an `is` test is cheaper than an `isinstance` chain.
        """
        while queue:
            msg = queue.popleft()
            kind = type(msg)
            if kind is Routed or kind is LinkNotice or kind is Handover:
                onward: list[Any] = []
                for result in self._journey(msg):
                    if type(result) is Handover or type(result) is Routed:
                        onward.append(result)  # the anonymous session joins first, then events
                    else:
                        self._emit(result, out)
                if onward and handovers is not None:
                    handovers.extend(onward)  # the caller routes them, in this order
                elif onward:
                    queue.extendleft(reversed(onward))
            elif kind is IdentityLink:
                out.append(msg)
            elif kind is Duplicate:
                self.counters.duplicates += 1
            else:
                self._emit(msg, out)

    def advance(self, watermark_ms: int) -> list[Record]:
        """Move the watermark (never backwards) and close everything it has passed."""
        out: list[Record] = []
        if watermark_ms <= self.watermark_ms:
            return out
        self.watermark_ms = watermark_ms
        # Buckets are minutes: a person in the current minute may not be due yet. Those are
        # re-scheduled after the loop, or the loop would pop them again forever.
        not_yet: list[tuple[str, int | None]] = []
        config, persons, heap, due = self.config, self.persons, self._due_heap, self._due
        listings = self._listed
        while heap and heap[0] <= watermark_ms // MINUTE_MS:
            minute = heapq.heappop(heap)
            listed = due.pop(minute, ())
            for person_id in sorted(set(listed)) if len(listed) > 1 else listed:
                deadline = listings.get(person_id)
                if deadline is None or deadline // MINUTE_MS != minute:
                    continue  # stale: listed again since, later (or gone)
                del listings[person_id]
                state = persons.get(person_id)
                if state is None:
                    continue
                if deadline <= watermark_ms:  # the listing may be early: the true deadline
                    deadline = next_deadline(state, config)
                if deadline is None or deadline > watermark_ms:
                    not_yet.append((person_id, deadline))
                    continue
                new_state, results = advance(state, watermark_ms, config)
                self._store(person_id, new_state)
                if results:
                    self._drain(deque(results), out)
        for person_id, deadline in not_yet:
            self._schedule(person_id, deadline)
        if watermark_ms - self._devices_pruned_at >= self.config.dedup_horizon_ms // 2:
            self._devices_pruned_at = watermark_ms
            for device_id, device in list(self.devices.items()):
                if prune_device(device, watermark_ms, self.config) is None:
                    del self.devices[device_id]
        self.aggregates, rows = flush_aggregates(self.aggregates, watermark_ms, self.config)
        out.extend(rows)
        return out

    def finish(self) -> list[Record]:
        """End of a finite input: close every open session and checkout attempt."""
        return self.advance(END_OF_TIME_MS)

    def next_deadline(self) -> int | None:
        """The earliest watermark (rounded down to its minute) at which `advance` has work."""
        return self._due_heap[0] * MINUTE_MS if self._due_heap else None

    def provisional(self) -> list[Record]:
        """What is known but not decided, as rows that later ones replace: every open session
        (`is_open`, its version below the row that will close it) and every per-minute total
        the watermark has not passed yet. Events still waiting for the watermark (the grace
        period) are applied first, so they are shown too (`journey.release_waiting`); otherwise
        nothing is decided: the sessions shown are only marked, so that one absorbed later is
        withdrawn (`streams.core.merges`)."""
        out: list[Record] = []
        config = self.config
        for person_id in sorted(self.persons):
            state = self.persons[person_id]
            if state.pending:
                for result in release_waiting(state, config):
                    self._emit(result, out)
                self._store(person_id, state)
            s = state.session
            if s is None:
                continue
            s.flags |= PUBLISHED
            engaged = is_engaged(s, config.engaged_min_duration_ms, config.engaged_min_views)
            out.append(summarise(s, person_id, engaged, is_open=True))
        self.aggregates, rows = flush_aggregates(
            self.aggregates, self.watermark_ms, config, unfinished=True
        )
        out.extend(rows)
        return out

    def snapshot(self) -> dict[str, Any]:
        """The whole state as plain data (streams.core.snapshot): restored, it carries on as if
        the run had never stopped."""
        from streams.core.snapshot import pipeline_to_dict

        return pipeline_to_dict(self)

    @classmethod
    def restore(
        cls, data: dict[str, Any], config: JourneyConfig | None = None, shard: str = "0"
    ) -> JourneyPipeline:
        from streams.core.snapshot import pipeline_from_dict

        pipeline = cls(config, shard)
        pipeline_from_dict(pipeline, data)
        return pipeline

    def reschedule(self) -> None:
        """Rebuild the deadline queue from the persons (after a restore)."""
        self._due.clear()
        self._due_heap.clear()
        self._listed.clear()
        for person_id in sorted(self.persons):
            self._schedule(person_id, next_deadline(self.persons[person_id], self.config))

    # -- bookkeeping ----------------------------------------------------------------------

    @property
    def open_sessions(self) -> int:
        return sum(1 for p in self.persons.values() if p.session is not None)

    @property
    def waiting_events(self) -> int:
        return sum(len(p.pending) for p in self.persons.values())

    @property
    def open_checkouts(self) -> int:
        return sum(1 for p in self.persons.values() if p.checkout is not None)

    def _routed(self, msg: Routed) -> list[Output]:
        """`_journey` for an event. An event that only joined the person's waiting list (no
        output) moved no deadline before its own time, nor before the person's listing: when that
        listing is no later than the event, it stands, and the deadline need not be worked out
        again (most events; an event step can only add memories whose deadlines lie after it)."""
        person_id, ts = msg.person_id, msg.event.ts_ms
        state, results = journey_step(self.persons.get(person_id), msg, self.config)
        listed = self._listed.get(person_id)
        if (
            state is not None
            and not results
            and ts > msg.watermark_ms
            and listed is not None
            and listed <= ts
        ):
            self.persons[person_id] = state
        else:
            self._store(person_id, state)
        return results

    def _journey(self, msg: JourneyInput) -> list[Output]:
        if isinstance(msg, Routed):
            person_id = msg.person_id
        elif isinstance(msg, LinkNotice):
            person_id = msg.anon_person_id
        else:
            person_id = msg.into_person
        state, results = journey_step(self.persons.get(person_id), msg, self.config)
        self._store(person_id, state)
        return results

    def _store(self, person_id: str, state: PersonState | None) -> None:
        if state is None:
            self.persons.pop(person_id, None)
            self._listed.pop(person_id, None)
            if self.touched is not None:
                self.touched.add(person_id)
            return
        self.persons[person_id] = state
        if self.touched is not None:
            self.touched.add(person_id)
        self._schedule(person_id, next_deadline(state, self.config))

    def _schedule(self, person_id: str, deadline: int | None) -> None:
        if deadline is None:
            return
        minute = deadline // MINUTE_MS
        earliest = self._listed.get(person_id)
        if earliest is not None:
            if earliest <= deadline:
                return  # listed already, at or before it: that listing will wake them
            if earliest // MINUTE_MS == minute:  # earlier, in the minute already listed
                self._listed[person_id] = deadline
                return
        self._listed[person_id] = deadline
        bucket = self._due.get(minute)
        if bucket is None:
            bucket = self._due[minute] = []
            heapq.heappush(self._due_heap, minute)
        if not bucket or bucket[-1] != person_id:  # the same person again and again: once
            bucket.append(person_id)

    def _emit(self, result: Output, out: list[Record]) -> None:
        # Most frequent first: one event row per event, far fewer sessions and signals.
        if isinstance(result, EventRow):
            if result.late:
                self.counters.late += 1
        elif isinstance(result, SessionSummary):
            if not (result.is_open or result.is_deleted):
                self.counters.sessions += 1
        elif isinstance(result, FrictionSignal):
            self.counters.signals[result.type] += 1
        elif isinstance(result, Duplicate):
            self.counters.duplicates += 1
            return
        elif isinstance(result, Handover | Routed):  # routed by `_drain`, not an output
            return
        elif isinstance(result, Retract):  # a revision took it back: out of the totals
            self.aggregates, _ = aggregate_step(self.aggregates, result.record, self.config, -1)
            self.counters.revisions[revision_kind(result)] += 1
            return
        self.aggregates, _ = aggregate_step(self.aggregates, result, self.config)
        out.append(result)
