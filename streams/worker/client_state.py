"""What the worker reads and sets in the Kafka client beneath Faust (aiokafka's own state).

Faust wraps an aiokafka consumer that lives in a thread of its own, and exposes neither a
client-level pause nor a position that does not wait. The worker needs both (input alignment,
the idle rule) and, when Faust's table recovery hangs, a look at what the client knows. All
of it reads private attributes of Faust and aiokafka, so it is kept here, in one place, and
tests/worker/test_client_state.py runs it against a real aiokafka consumer object.
"""

from __future__ import annotations

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


def report_recovery(app: Any, now_monotonic: float, log: Any, after_s: float = 60.0) -> None:
    """Warn (once a minute) when Faust's table recovery has run for more than a minute, with
    what the Kafka client knows of each changelog partition still to read.

    Faust only says "No event received for active tp … since recovery start"; a recovery that
    never ends keeps the partitions it restores from every worker's results, and the cause
    lies in the client (no valid position, paused, records buffered and not taken, a fetch in
    flight) or in Faust's consumer thread (calls queued). Reads private state of both: this is
    a diagnostic, it decides nothing."""
    recovery = getattr(getattr(app, "tables", None), "_recovery", None)
    started = getattr(recovery, "_recovery_started_at", None)
    if not getattr(app, "in_recovery", False) or recovery is None or started is None:
        return
    last = getattr(recovery, "_parcours_reported_at", 0.0)
    if now_monotonic - started < after_s or now_monotonic - last < after_s:
        return
    recovery._parcours_reported_at = now_monotonic
    thread = app.consumer._thread
    client = thread._consumer
    queued = thread.method_queue._queue.qsize()
    lines = []
    assignment = _assignment(client)
    for tp in sorted(recovery.active_tps):
        need, have = recovery.active_highwaters.get(tp), recovery.active_offsets.get(tp)
        if need is not None and have is not None and have >= need:
            continue
        state = assignment.state_value(tp) if assignment is not None else None
        if state is None:
            lines.append(f"{tp.topic}/{tp.partition}: need {need}, have {have}, not assigned")
            continue
        lines.append(
            f"{tp.topic}/{tp.partition}: need {need}, have {have}, position "
            f"{state._position}, awaiting reset {state.awaiting_reset}, paused {state.paused}, "
            f"buffered {tp in client._fetcher._records}"
        )
    log.warning(
        "table recovery running for %.0f s; Faust consumer-thread calls queued: %d; fetches "
        "in flight to nodes %s; changelog partitions left: %s",
        now_monotonic - started,
        queued,
        sorted(client._fetcher._in_flight) if client is not None else None,
        "; ".join(lines) or "none",
    )
