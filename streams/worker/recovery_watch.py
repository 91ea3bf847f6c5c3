"""Watching Faust's table recovery: report a long one, and read again what it lost.

When partitions move (a worker joins, leaves or restarts), the new owner rebuilds the persons
and devices tables from their changelog topics before it processes anything: Faust's table
recovery. It ends when every changelog partition has been applied up to the offset it had at
the start, so a record the Kafka client handed out that never reached recovery leaves it
waiting for ever, and with it every result of those partitions. Seen twice in CI runs of the
joining-worker test: the client one past the partition's last offset, recovery at -1, nothing
fetched and waiting, nothing queued in Faust's consumer thread.

The cause found (streams/worker/faust_internals.py) is repaired where it happens: records Faust
fetches and drops are fetched again. This watch is the net under that repair, for a loss on
any other path between the client and recovery: a changelog partition whose client position
is past what recovery has applied, with nothing fetched and waiting and nothing heard by
recovery for `PARCOURS_STREAM_RECOVERY_STALLED_AFTER_S` (30 s: Faust applies a fetch within
milliseconds, and a recovery that never ends costs far more), is read again from the first
offset not applied. Recovery applies only offsets above the last it applied, so a record that
was merely slow is not applied twice. It sees only a loss that includes a partition's last
records: one before them leaves recovery complete with a hole, which looks like the gaps that
compaction leaves in a changelog's offsets.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from faust import Service

from streams import metrics
from streams.worker.faust_internals import (
    ChangelogRead,
    RecoveryView,
    recovery_view,
    table_recovery,
)

#: A recovery running longer than this is reported (once a minute).
REPORT_AFTER_S = 60.0


def lost_reads(left: list[ChangelogRead], now: float, after_s: float) -> list[tuple[Any, int]]:
    """The changelog partitions to read again, with the offset to read from.

    Intuition: the client's position is the next offset it will hand out, and `have` the last
    offset recovery applied; the records in between were handed out. If none is fetched and
    waiting in the client, and recovery has heard nothing of the partition for `after_s`,
    they are not on their way: they were lost between the client and recovery. A partition
    still awaiting its position, or paused, has handed nothing out and is left alone."""
    lost = []
    for read in left:
        if read.position is None or read.awaiting_reset or read.paused or read.buffered:
            continue
        if read.position > read.have + 1 and now - read.heard_at >= after_s:
            lost.append((read.tp, read.have + 1))
    return lost


async def reread_lost_changelogs(app: Any, now: float, log: Any, after_s: float) -> int:
    """Seek the changelog partitions whose records were lost to recovery back to the first
    offset it has not applied; returns how many were. Faust's own `Consumer.seek` does it (and
    forgets the last offset it handed out, which would otherwise make it drop the re-read)."""
    view = recovery_view(app)
    if view is None:
        return 0
    recovery = table_recovery(app)
    reread_at: dict[Any, float] = recovery.__dict__.setdefault("_parcours_reread_at", {})
    left = [
        read
        for read in view.left
        if now - reread_at.get(read.tp, float("-inf")) >= after_s  # one re-read at a time
    ]
    lost = lost_reads(left, now, after_s)
    for tp, offset in lost:
        read = next(read for read in left if read.tp == tp)
        log.warning(
            "table recovery: the Kafka client handed out %s up to offset %d but recovery "
            "applied up to %d and has heard nothing for %.0f s: records lost on the way to "
            "recovery; reading from %d again",
            f"{tp.topic}/{tp.partition}",
            read.position - 1 if read.position is not None else -1,
            read.have,
            now - read.heard_at,
            offset,
        )
        metrics.CHANGELOG_REREADS.labels(tp.topic).inc()
        reread_at[tp] = now
        await app.consumer.seek(tp, offset)
    return len(lost)


def report_recovery(app: Any, now: float, log: Any, after_s: float = REPORT_AFTER_S) -> None:
    """Warn (once a minute) when Faust's table recovery has run for more than a minute, with
    what the Kafka client knows of each changelog partition still to read.

    Faust only says "No event received for active tp … since recovery start"; a recovery that
    never ends keeps the partitions it restores from every worker's results, and the cause
    lies in the client (no valid position, paused, records buffered and not taken, a fetch in
    flight) or in Faust's consumer thread (calls queued). This decides nothing."""
    view: RecoveryView | None = recovery_view(app)
    if view is None:
        return
    recovery = table_recovery(app)
    last = getattr(recovery, "_parcours_reported_at", 0.0)
    if now - view.started_at < after_s or now - last < after_s:
        return
    recovery._parcours_reported_at = now
    log.warning(
        "table recovery running for %.0f s; Faust consumer-thread calls queued: %d; fetches "
        "in flight to nodes %s; records waiting for recovery: %d; changelog partitions "
        "left: %s",
        now - view.started_at,
        view.queued_calls,
        view.in_flight,
        view.changelog_queue,
        "; ".join(read.describe() for read in view.left) or "none",
    )


class RecoveryWatch(Service):
    """Watches table recovery once a second, from the app's start: Faust starts its timers
    only after the first recovery has ended, and a worker's first recovery (after a restart)
    is one to watch. Added to the app as a dependency, so it starts and stops with it."""

    def __init__(self, app: Any, stalled_after_s: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app = app
        self.stalled_after_s = stalled_after_s
        self.watch_log = logging.getLogger(__name__)

    @Service.timer(1.0)
    async def _watch(self) -> None:
        try:
            now = time.monotonic()
            await reread_lost_changelogs(self.app, now, self.watch_log, self.stalled_after_s)
            report_recovery(self.app, now, self.watch_log)
        except Exception as exc:  # private state of Faust and aiokafka: never stop watching
            self.watch_log.warning("recovery watch failed: %r", exc)
