"""The streaming sink's spike tracker, rebuilt from what the sink stored.

Intuition: the detector's decisions are a function of the per-minute counts alone, whatever
order and speed they arrive in (streams/core/spike_tracker.py). The sink stage writes every
per-minute aggregate it judges to `minute_aggregates` before it commits, so after a restart the
tables hold everything its tracker had seen: reading back the newest version of each minute
over the baseline's reach (the weeks looked back plus the rolling days) and feeding it to a new
tracker gives the tracker the stopped process had, without a checkpoint of its own to keep in
step with the offsets. The spikes it already wrote (`friction_spikes`, newest versions) are
loaded as written, so the next rows carry on their versions: an unchanged spike is not written
again, a changed one gets the next version, one that no longer holds is withdrawn (a stopped
sink from before this rebuild, whose baseline had started afresh, is corrected so).

Only the sink stage uses this (the embedded runner saves its tracker with its state file).
"""

from __future__ import annotations

from dataclasses import fields as dataclass_fields
from dataclasses import replace
from datetime import UTC, datetime

from clickhouse_connect.driver.client import Client

from streams.core.config import MINUTE_MS, JourneyConfig
from streams.core.records import FrictionSpike, MinuteAggregate
from streams.core.spike_tracker import SpikeTracker
from streams.core.spikes import SpikeSettings

#: The metrics the tracker reads (streams.core.spike_tracker.SpikeTracker.observe).
_METRICS = (
    "friction",
    "events",
    "sessions_started",
    "friction_by_device",
    "events_by_device",
    "sessions_started_by_device",
)
_DAY_MS = 1440 * MINUTE_MS


def stored_tracker(
    client: Client, settings: SpikeSettings, journey: JourneyConfig | None = None
) -> tuple[SpikeTracker, list[FrictionSpike]]:
    """A tracker as it stood when the sink stopped, and the spike rows to write that its
    judging of the stored minutes changed (none when the stopped tracker had judged them alike).

    The minutes are read and judged a day at a time, so neither the rows nor the tracker's
    memory of minutes (kept for revisions, 28 hours) hold the five weeks at once."""
    tracker = SpikeTracker(settings, journey or JourneyConfig())
    newest = client.query("SELECT toInt64(max(minute)) * 1000 FROM minute_aggregates")
    newest_ms = newest.result_rows[0][0] if newest.result_rows else 0
    if not newest_ms:
        return tracker, []
    from_ms = newest_ms - (7 * settings.weeks + settings.rolling_days + 2) * _DAY_MS
    spikes = client.query(
        """SELECT spike_id, type, channel, device_type, toUnixTimestamp64Milli(started_at),
                  toUnixTimestamp64Milli(ended_at), observed, expected, ratio, score, status,
                  signals, expected_signals, denominator, version
           FROM friction_spikes FINAL
           WHERE NOT is_deleted AND ended_at >= fromUnixTimestamp64Milli({from_ms:Int64})""",
        parameters={"from_ms": from_ms},
    )
    names = [f.name for f in dataclass_fields(FrictionSpike)][:14]  # without version, is_deleted
    for values in spikes.result_rows:
        row = FrictionSpike(**dict(zip(names, values[:14], strict=True)))
        row = replace(row, signals=int(row.signals), denominator=int(row.denominator))
        tracker.emitted[row.spike_id] = (row, int(values[14]))
    changed: dict[str, FrictionSpike] = {}
    for day_ms in range(from_ms - from_ms % _DAY_MS, newest_ms + 1, _DAY_MS):
        minutes = client.query(
            """SELECT toInt64(minute) * 1000, shard, channel, metric, key,
                      argMax(count, version), max(version)
               FROM minute_aggregates
               WHERE minute >= toDateTime({lo:Int64}, 'UTC')
                 AND minute < toDateTime({hi:Int64}, 'UTC')
                 AND metric IN {metrics:Array(String)}
               GROUP BY minute, shard, channel, metric, key
               ORDER BY minute""",
            parameters={
                "lo": max(day_ms, from_ms) // 1000,
                "hi": (day_ms + _DAY_MS) // 1000,
                "metrics": list(_METRICS),
            },
        )
        tracker.observe(
            [
                MinuteAggregate(m, ch, metric, key, int(count), 0.0, shard, int(version))
                for m, shard, ch, metric, key, count, version in minutes.result_rows
            ]
        )
        # as the live stage does after a batch: judged up to the newest minute seen
        for row in tracker.advance(min(day_ms + _DAY_MS, newest_ms + MINUTE_MS)):
            changed[row.spike_id] = row  # the newest version of each
    return tracker, list(changed.values())


def describe(tracker: SpikeTracker) -> str:
    """One line for the log: how much the rebuilt tracker knows."""
    if tracker.last_step < 0:
        return "no stored minutes: the spike baseline starts afresh"
    newest = datetime.fromtimestamp(tracker.last_step * tracker.settings.step_ms / 1000, UTC)
    return (
        f"{len(tracker.minutes)} stored minute counts up to {newest:%Y-%m-%d %H:%M} UTC, "
        f"{len(tracker.emitted)} spikes as written"
    )
