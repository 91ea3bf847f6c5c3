"""What the worker reads and sets in the Kafka client beneath Faust (aiokafka's own state).

Faust wraps an aiokafka consumer that lives in a thread of its own, and exposes neither a
client-level pause nor a position that does not wait. The worker needs both (input alignment,
the idle rule) and, when Faust's table recovery hangs, a look at what the client knows. All
of it reads private attributes of Faust and aiokafka, so it is kept here, in one place, and
tests/worker/test_client_state.py runs it against a real aiokafka consumer object. What the
worker does with it lives elsewhere (identify_stage.py, consumer.py, recovery_watch.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition


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
    recovery = getattr(getattr(app, "tables", None), "_recovery", None)
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
