"""Event-time watermarks over several upstream partitions, with an idleness rule.

Intuition: a stage that merges messages from several upstream partitions may only assume
event time T has passed when *every* upstream has passed T, so its watermark is the minimum of
the upstreams' watermarks. An upstream that has sent nothing for `idle_after_s` seconds of
wall-clock time is idle (a quiet partition, the end of a finite input) and is left out of the
minimum, so it cannot hold results back forever. When every upstream is idle the stream is
silent, and silence means time passes: the watermark follows the wall clock, which closes every
open session and checkout attempt (in a live stream, exactly what has happened; at the end of a
replayed input, what the embedded runner does at its end). Wall-clock time only ever decides
idleness and silence, never which session an event belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class WatermarkTracker:
    #: None: no upstream ever counts as idle here, because the upstreams declare their own
    #: idleness (the streaming worker does: see streams/worker/identify_stage.py).
    idle_after_s: float | None = 5.0
    #: upstream id -> (its latest watermark, wall-clock time it was last heard from)
    upstreams: dict[str, tuple[int, float]] = field(default_factory=dict)
    current: int = -(2**62)

    def expect(self, upstreams: list[str], now_s: float) -> None:
        """Upstreams known to exist hold the watermark back until they speak or go idle."""
        for upstream in upstreams:
            self.upstreams.setdefault(upstream, (-(2**62), now_s))

    def observe(self, upstream: str, watermark_ms: int, now_s: float) -> None:
        previous = self.upstreams.get(upstream)
        best = watermark_ms if previous is None else max(previous[0], watermark_ms)
        self.upstreams[upstream] = (best, now_s)

    def watermark(self, now_s: float) -> int:
        """The stage's watermark now; never moves backwards."""
        if not self.upstreams:
            return self.current
        idle = self.idle_after_s
        if idle is None:
            self.current = max(self.current, min(wm for wm, _ in self.upstreams.values()))
            return self.current
        active = [wm for wm, seen in self.upstreams.values() if now_s - seen < idle]
        if active:
            candidate = min(active)
        else:
            candidate = max(int(now_s * 1000), *(wm for wm, _ in self.upstreams.values()))
        self.current = max(self.current, candidate)
        return self.current


def aligned_pauses(
    watermarks: dict[str, int],
    backlogged: set[str],
    paused: set[str],
    max_skew_ms: int,
) -> set[str]:
    """The upstreams to keep paused so that none runs far ahead of the slowest in event time.

    Intuition (watermark alignment, as Flink's `withWatermarkAlignment` does for its splits):
    a stage's watermark is the minimum over its upstreams, so when a backlog is replayed and
    one partition is read faster than another in event time, every event of the fast one
    waits, in state, for the slow one; the waiting state then grows with the backlog instead
    of with the skew. Pausing the upstreams more than `max_skew_ms` ahead of the slowest keeps
    it bounded: what waits is at most `max_skew_ms` (plus the grace period) of events.

    Only upstreams with unread data (`backlogged`) take part: a partition read to its end has
    nothing to hold back, and its newest event time may be old only because it is quiet. The
    slowest backlogged upstream is never paused, so the stream always progresses. A paused
    upstream is resumed once it is within half the skew (hysteresis: no pause and resume on
    every batch). Upstreams without a watermark yet take no part either way.
    """
    known = {name: wm for name, wm in watermarks.items() if name in backlogged}
    if not known:
        return set()
    slowest = min(known.values())
    keep = set()
    for name, wm in known.items():
        limit = max_skew_ms // 2 if name in paused else max_skew_ms
        if wm - slowest > limit:
            keep.add(name)
    return keep
