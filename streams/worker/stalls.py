"""Watermark stall reports: results wait for the slowest upstream, and the operator should know.

A journey partition's watermark is the minimum over its upstreams (streams/worker/
journey_stage.py); when it has not moved for a minute, a warning names the slowest upstreams
(an input partition whose worker is stuck or gone, a journey partition not broadcasting).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streams.worker.journey_stage import JourneyStage


def report_stalls(
    stage: JourneyStage,
    now: float,
    log: Any,
    after_s: float = 60.0,
    describe: Callable[[str, float], str | None] = lambda source, now: None,
) -> None:
    """Warn (once a minute) about a partition whose watermark has not moved for a minute,
    naming the upstream that holds it back: results wait for it, the operator should know.
    `describe` tells how far this worker has read an input partition it owns."""
    for part in stage.parts.values():
        watermark = stage.watermark(part, now)
        if watermark != part.stall_wm or not part.stall_since:
            part.stall_wm, part.stall_since = watermark, now
            continue
        if now - part.stall_since < after_s or now - part.stall_reported < after_s:
            continue
        part.stall_reported = now
        upstreams = {**part.tracker.upstreams, **part.peers.upstreams}
        slowest = sorted(upstreams.items(), key=lambda kv: kv[1][0])[:3]
        log.warning(
            "journey partition %d: watermark %d unchanged for %.0f s; slowest upstreams "
            "(watermark, last heard): %s; held hand-overs: %d",
            part.partition,
            watermark,
            now - part.stall_since,
            slowest,
            len(part.held),
        )
        for source, _ in slowest:
            reading = describe(source, now)
            if reading is not None:
                log.warning("input partition %s, read here: %s", source, reading)


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
    subscription = client._subscription.subscription if client is not None else None
    assignment = subscription.assignment if subscription is not None else None
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
