"""Every use of Faust's and aiokafka's private internals, in one module (the thin adapter).

faust-streaming 0.15.3 and aiokafka 0.14.0 are pinned (constraints.txt); what is here was read
in those versions. Each function or class below names the private attribute it relies on, and
tests/worker/test_faust_internals.py checks each of them against the real classes (a real
Faust app, a real aiokafka consumer and fetcher), so an upgrade that moves one fails there
rather than in a stuck recovery or a lost record. Nothing outside this module may touch an
underscore attribute of Faust or aiokafka; what the worker *does* with these facts lives
elsewhere (identify_stage.py, recovery_watch.py, app.py).

Why the worker needs them:
- Faust wraps an aiokafka consumer that lives in a thread of its own and exposes neither a
  client-level pause nor a position that does not wait (input alignment, the idle rule);
- the committed and handed-over offsets Faust keeps (the idle rule's facts, input_ends.py);
- records Faust fetches and then drops around a rebalance (`RewindingConsumer`,
  `keep_stream_records_on_resume`);
- a look at table recovery when it hangs (`recovery_view`, recovery_watch.py).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition
from faust.transport.drivers.aiokafka import Consumer

from streams import metrics

log = logging.getLogger(__name__)


def consumer_thread(app: Any) -> Any:
    """Faust's consumer thread (`Consumer._thread`), which owns the aiokafka client."""
    return app.consumer._thread


def committed_offsets(consumer: Any) -> Mapping[Any, int]:
    """The group's committed offsets (next to read) Faust keeps (`Consumer._committed_offset`)."""
    committed: Mapping[Any, int] = consumer._committed_offset
    return committed


def handed_offsets(consumer: Any) -> Mapping[Any, int]:
    """The last offset Faust handed to the agents per partition (`Consumer._read_offset`)."""
    handed: Mapping[Any, int] = getattr(consumer, "_read_offset", {})
    return handed


def table_recovery(app: Any) -> Any:
    """Faust's table-recovery service if it exists (`TableManager._recovery`; the public
    `recovery` property would create it)."""
    return getattr(getattr(app, "tables", None), "_recovery", None)


def _assignment(client: Any) -> Any:
    """The client's current assignment state (None: no client, or nothing assigned)."""
    subscription = client._subscription.subscription if client is not None else None
    return subscription.assignment if subscription is not None else None


def client_position(consumer: Any, tp: Any) -> int | None:
    """The offset the Kafka client fetches next in an assigned partition (None: not known yet),
    read from the client's state.

    Not asked through Faust's `Consumer.position`: that call runs in Faust's consumer thread,
    which runs two calls at a time, and aiokafka's `position` waits (a request timeout at a
    time, for ever) until the partition has a valid position. Around a rebalance, two such
    calls from the tick would keep Faust's own fetches waiting behind them, table recovery
    included; a timeout on our side does not end them in that thread. Faust itself reads and
    seeks the client from the event loop's thread the same way (`seek`, `highwater`)."""
    assignment = _assignment(consumer._thread._consumer)
    if assignment is None:
        return None
    state = assignment.state_value(TopicPartition(tp.topic, tp.partition))
    return state.position if state is not None and state.has_valid_position else None


async def reconcile_pauses(consumer_thread: Any, pause: set[Any], topics: set[str]) -> None:
    """Make the Kafka client's paused input partitions exactly `pause` (those assigned).

    Pauses are made in the client itself, in Faust's consumer thread, not with Faust's
    `Consumer.pause_partitions`: that pause is only a filter on what Faust asks the fetcher
    for, and records of a fetch already under way when it starts are discarded while the
    fetcher's position has moved past them, so they are skipped, and Faust then commits over
    the gap (seen: thousands of messages lost in a replayed backlog). aiokafka's own pause
    drops buffered records *without* moving the position, so resuming reads on from the first
    record not delivered. Calls run in the thread that owns the aiokafka consumer.
    """
    client = consumer_thread._consumer  # private: Faust exposes no client-level pause
    assigned = client.assignment()
    wanted = {TopicPartition(t, p) for t, p in pause} & assigned
    paused = {tp for tp in client.paused() if tp.topic in topics}
    if wanted - paused:
        client.pause(*sorted(wanted - paused))
    if paused - wanted:
        client.resume(*sorted(paused - wanted))


@dataclass(frozen=True)
class ChangelogRead:
    """One changelog partition Faust's table recovery still reads, seen from both sides: what
    recovery needs and has applied, and what the Kafka client has handed out."""

    tp: Any
    #: the partition's last offset at recovery start, and the last offset recovery applied
    #: (-1: none)
    need: int
    have: int
    #: the client's next offset to hand out (None: not assigned, or no valid position yet)
    position: int | None
    awaiting_reset: bool
    paused: bool
    #: records fetched by the client and not yet handed out
    buffered: bool
    #: monotonic time of recovery's last record of this partition (or of recovery's start)
    heard_at: float

    def describe(self) -> str:
        head = f"{self.tp.topic}/{self.tp.partition}: need {self.need}, have {self.have}"
        if self.position is None and not self.awaiting_reset:
            return f"{head}, not assigned or no position"
        return (
            f"{head}, position {self.position}, awaiting reset {self.awaiting_reset}, "
            f"paused {self.paused}, buffered {self.buffered}"
        )


@dataclass(frozen=True)
class RecoveryView:
    """Faust's table recovery in progress, with the client's view of what is left."""

    started_at: float
    left: list[ChangelogRead]
    #: Faust consumer-thread calls waiting, fetches in flight (node ids), records applied-to-be
    queued_calls: int
    in_flight: list[int]
    changelog_queue: int


def recovery_view(app: Any) -> RecoveryView | None:
    """What Faust's table recovery still reads (None: no recovery running), from the private
    state of Faust's Recovery service, its consumer thread and the aiokafka client."""
    recovery = table_recovery(app)
    started = getattr(recovery, "_recovery_started_at", None)
    if not getattr(app, "in_recovery", False) or recovery is None or started is None:
        return None
    thread = app.consumer._thread
    client = thread._consumer
    assignment = _assignment(client)
    received = getattr(recovery, "_active_events_received_at", {})
    left = []
    for tp in sorted(recovery.active_tps):
        need, have = recovery.active_highwaters.get(tp), recovery.active_offsets.get(tp)
        if need is None or (have is not None and have >= need):
            continue
        state = assignment.state_value(tp) if assignment is not None else None
        left.append(
            ChangelogRead(
                tp=tp,
                need=need,
                have=-1 if have is None else have,
                position=state._position if state is not None else None,
                awaiting_reset=state is not None and state.awaiting_reset,
                paused=state is not None and state.paused,
                buffered=tp in client._fetcher._records,
                heard_at=max(started, received.get(tp, started)),
            )
        )
    queue = getattr(getattr(app, "tables", None), "_changelog_queue", None)
    return RecoveryView(
        started_at=started,
        left=left,
        queued_calls=thread.method_queue._queue.qsize(),
        in_flight=sorted(client._fetcher._in_flight),
        changelog_queue=queue.qsize() if queue is not None else 0,
    )


def rewind_if_unmoved(consumer: Any, tp: Any, first: int, last: int) -> bool:
    """Seek the Kafka client back to `first` if its position is still `last + 1`, where the
    fetch that handed out `first..last` left it (nothing has sought it since). Reads and
    seeks the client from the event loop's thread, as Faust's own `seek` does."""
    client = consumer._thread._consumer
    assignment = _assignment(client)
    if assignment is None:
        return False
    aio_tp = TopicPartition(tp.topic, tp.partition)
    state = assignment.state_value(aio_tp)
    if state is None or not state.has_valid_position or state.position != last + 1:
        return False
    client.seek(aio_tp, first)
    return True


# -- records Faust fetches and drops ------------------------------------------------------------
#
# Faust's Kafka consumer, made to put back the records it fetches and then drops.
#
# Faust fetches records in its consumer thread (the Kafka client's position moves past them)
# and then, back in the event loop, hands over only some: none while its flow is stopped (a
# rebalance), none after the consumer generation changed, none of a partition that is not
# "active" when they arrive. aiokafka's own pause never loses a record this way (it drops
# buffered records *without* moving the position); Faust's filters do, and the records are
# skipped for good unless something seeks the partition back.
#
# Around a rebalance this meets a second quirk (read in faust-streaming 0.15.3 and aiokafka
# 0.14): the consumer thread serves a fetch with the live set of active partitions, which Faust
# empties while partitions move, and aiokafka reads an empty set as "every partition". A fetch
# still under way then hands out records of every partition, changelogs included, and Faust
# drops them. Faust seeks input partitions back to their committed offsets after a rebalance;
# nothing seeks back a changelog partition that table recovery has just sought to its start, so
# recovery waits for ever for the records handed out meanwhile (seen in CI, see
# streams/worker/recovery_watch.py), or, if they were not the last, completes without them.
#
# `RewindingConsumer` closes that hole where it opens: after each fetch it seeks every
# partition whose records were not all handed over back to the first one that was not, unless
# something has moved its position since (a recovery's seek, Faust's seek to committed
# offsets): then that seek decides where reading goes on.


class RewindingConsumer(Consumer):
    """Faust's aiokafka consumer; records fetched and not handed over are fetched again."""

    _last_fetch: Any = None

    async def _wait_next_records(self, timeout: float) -> Any:
        records, active = await super()._wait_next_records(timeout)
        self._last_fetch = records
        return records, active

    async def getmany(self, timeout: float) -> AsyncIterator[Any]:
        """Faust's `getmany`, counting what it hands over of each partition's records.

        Intuition: Faust hands over a partition's records in offset order and drops the
        rest of them together (a filter on the partition, or a stop of the whole batch), so
        the count handed over marks the first record dropped."""
        handed: dict[Any, int] = {}
        self._last_fetch = None
        try:
            async for tp, message in super().getmany(timeout):
                handed[tp] = handed.get(tp, 0) + 1
                yield tp, message
        finally:
            fetched, self._last_fetch = self._last_fetch, None
            if fetched:
                self._rewind(fetched, handed)

    def _rewind(self, fetched: Any, handed: dict[Any, int]) -> None:
        for tp, records in fetched.items():
            done = handed.get(tp, 0)
            if done >= len(records):
                continue
            first, last = records[done].offset, records[-1].offset
            try:
                rewound = rewind_if_unmoved(self, tp, first, last)
            except Exception as exc:  # a partition revoked meanwhile: its new owner reads it
                log.warning("could not put back %s from %d: %r", tp, first, exc)
                continue
            if rewound:
                metrics.RECORDS_PUT_BACK.labels(tp.topic).inc(len(records) - done)
                log.info(
                    "put back %d fetched records of %s/%d that Faust did not hand over "
                    "(reading from %d again)",
                    len(records) - done,
                    tp.topic,
                    tp.partition,
                    first,
                )


def keep_stream_records_on_resume(app: Any) -> None:
    """Make Faust's flow-control resume clear only the changelog queue, not the streams' queues.

    Faust clears every stream's queue when it resumes the flow after a rebalance, in the same
    step that follows its seek of the input partitions to their committed offsets. That seek
    asks the broker for each partition's committed offset in turn (a round trip each, 100-150
    ms for a worker's partitions here), and meanwhile the fetcher hands over records of the
    partitions already sought; they wait in the streams' queues, the clear drops them, and the
    client is past them: lost. If later records of the partition are processed, nothing shows
    the hole (seen in CI: events missing after a restart; when nothing followed, the idle rule
    found the partition fetched but not processed and read it again, the re-reads the README
    mentions). Keeping them costs at most records processed twice (read before a partition's
    seek and again after it), which the journey core's replay guards absorb, as they do after
    a crash. Queues are still cleared when partitions are revoked (`flow_control.clear()`).
    The changelog queue is cleared as before: recovery applies only offsets above the last it
    applied, so a stale record there would hide the ones before it."""
    flow = app.flow_control
    resume = type(flow).resume

    def resume_keeping_stream_records() -> None:
        flow.clear = app.tables.changelog_queue.clear  # what resume() clears, this once
        try:
            resume(flow)
        finally:
            del flow.clear  # the explicit clear (on revocation) clears every queue again

    flow.resume = resume_keeping_stream_records
