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
