"""Per-minute aggregates of one shard of the stream.

Intuition: counts are kept per (minute, channel, metric, key) and written out once the watermark
has passed the minute, so a minute is normally written once, complete. Late input that still
falls within the retention period updates the minute's totals and writes the *whole* row again
with a higher `version`; storage keeps the newest version, so rewriting is idempotent and no
delta is ever counted twice. Shards (stream partitions) keep their own rows; readers add shards.

Metrics: `events` (key = event_type), `late_events`, `conversions` and `revenue` (purchase
events, but not a copy of a purchase already counted: `EventRow.duplicate_transaction`),
`sessions_started` and `sessions_ended` (channel `omni` when a session touched several
channels), `friction` (key = signal type).

By device: the friction spikes are also decided per device type (a checkout bug in the iPad
app alone), so both sides of each friction rate are counted again split by device type:
`friction_by_device` (key `<signal type>@<device type>`), `events_by_device` (key `<event
type>@<device type>`, only the event types a friction rate is a rate of, `BY_DEVICE_EVENTS`)
and `sessions_started_by_device` (key = the session's device type). These are separate metrics,
not a column, so every total above stays as it was (no query sums a split twice); rows without
a device type are in the totals only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.properties import CANONICAL
from streams.core.config import MINUTE_MS, JourneyConfig
from streams.core.friction import SIGNAL_TYPES
from streams.core.records import EventRow, FrictionSignal, MinuteAggregate, SessionSummary
from streams.core.spikes import RATES

BucketKey = tuple[int, str, str, str]
#: Names known in advance (event types of the contract, signal types), one string object each.
_NAMES = {name: name for name in (*CANONICAL, *SIGNAL_TYPES)}
#: Event types counted by device type too: what a friction rate is a rate of (spikes.RATES).
BY_DEVICE_EVENTS = frozenset(key for metric, key in RATES.values() if metric == "events")


@dataclass(slots=True)
class Bucket:
    count: int = 0
    amount: float = 0.0
    version: int = 0


@dataclass(slots=True)
class AggregateState:
    shard: str = "0"
    buckets: dict[BucketKey, Bucket] = field(default_factory=dict)
    #: Buckets changed since they were last written out, by minute (flushing pops whole minutes).
    dirty: dict[int, set[BucketKey]] = field(default_factory=dict)
    #: Every bucket key by minute, so forgetting old minutes never scans the live ones.
    minutes: dict[int, list[BucketKey]] = field(default_factory=dict)
    last_cleanup_ms: int = 0
    #: Contributions older than the retention period: counted here, not in any minute.
    dropped: int = 0
    watermark_ms: int = 0


def _add(
    state: AggregateState,
    ts_ms: int,
    channel: str,
    metric: str,
    key: str,
    amount: float = 0.0,
    sign: int = 1,
) -> None:
    """Count one contribution. A new bucket's key shares its minute (one int object per
    minute) and, for the contract's event types and the signal types, its name string: these
    buckets are kept for the whole retention, and each event brings its own copies."""
    minute = ts_ms - ts_ms % MINUTE_MS
    bucket_key = (minute, channel, metric, key)
    bucket = state.buckets.get(bucket_key)
    if bucket is None:
        keys = state.minutes.get(minute)
        if keys is None:
            keys = state.minutes[minute] = []
        else:
            minute = keys[0][0]
        bucket_key = (minute, channel, metric, _NAMES.get(key, key))
        bucket = state.buckets[bucket_key] = Bucket()
        keys.append(bucket_key)
    bucket.count += sign
    if amount:  # most buckets count only: their amount stays the shared 0.0
        bucket.amount += sign * amount
    dirty = state.dirty.get(minute)
    if dirty is None:
        state.dirty[minute] = {bucket_key}
    else:
        dirty.add(bucket_key)


def _session_channel(channels: tuple[str, ...]) -> str:
    return channels[0] if len(channels) == 1 else "omni"


def aggregate_step(
    state: AggregateState, record: object, config: JourneyConfig, sign: int = 1
) -> tuple[AggregateState, list[MinuteAggregate]]:
    """Count one emitted record into its minute (records of other kinds are ignored);
    `sign` -1 takes back a record a revision replaced (`streams.core.revise.Retract`)."""
    horizon = state.watermark_ms - config.aggregate_retention_ms
    if isinstance(record, EventRow):
        if record.occurred_at_ms < horizon:
            state.dropped += 1
            return state, []
        ts, channel = record.occurred_at_ms, record.channel
        _add(state, ts, channel, "events", record.event_type, 0.0, sign)
        if record.device_type and record.event_type in BY_DEVICE_EVENTS:
            key = f"{record.event_type}@{record.device_type}"
            _add(state, ts, channel, "events_by_device", key, sign=sign)
        if record.late:
            _add(state, ts, channel, "late_events", "", sign=sign)
        if record.event_type == "purchase" and not record.duplicate_transaction:
            _add(state, ts, channel, "conversions", "", sign=sign)
            _add(state, ts, channel, "revenue", "", record.value or 0.0, sign)
    elif isinstance(record, SessionSummary):
        if record.is_open or record.is_deleted:  # counted once, when it closes
            return state, []
        channel = _session_channel(record.channels)
        started, device_type = record.started_at_ms, record.device_type
        if started >= horizon:
            _add(state, started, channel, "sessions_started", "", sign=sign)
            if device_type:
                _add(state, started, channel, "sessions_started_by_device", device_type, sign=sign)
        if record.ended_at_ms >= horizon:
            _add(state, record.ended_at_ms, channel, "sessions_ended", "", sign=sign)
    elif (
        isinstance(record, FrictionSignal)
        and record.occurred_at_ms >= horizon
        and not record.is_deleted
    ):
        _add(state, record.occurred_at_ms, record.channel, "friction", record.type, sign=sign)
        if record.device_type:
            key = f"{record.type}@{record.device_type}"
            _add(state, record.occurred_at_ms, record.channel, "friction_by_device", key, sign=sign)
    return state, []


def flush_aggregates(
    state: AggregateState, watermark_ms: int, config: JourneyConfig, *, unfinished: bool = False
) -> tuple[AggregateState, list[MinuteAggregate]]:
    """Write out every changed minute the watermark has passed; forget minutes past retention.

    With `unfinished`, changed minutes the watermark has not passed are written too, as they
    stand (the end of a run that will be continued): a later change writes the minute again
    with a higher version, so the newest row is always the whole count.
    """
    state.watermark_ms = max(state.watermark_ms, watermark_ms)
    out: list[MinuteAggregate] = []
    horizon = state.watermark_ms - config.aggregate_retention_ms
    for minute in [m for m in state.dirty if unfinished or m + MINUTE_MS <= state.watermark_ms]:
        for key in state.dirty.pop(minute):
            bucket = state.buckets[key]
            bucket.version += 1
            _, channel, metric, name = key
            out.append(
                MinuteAggregate(
                    minute_ms=minute,
                    channel=channel,
                    metric=metric,
                    key=name,
                    count=bucket.count,
                    amount=round(bucket.amount, 2),
                    shard=state.shard,
                    version=bucket.version,
                )
            )
    if state.watermark_ms - state.last_cleanup_ms >= 60 * MINUTE_MS:
        state.last_cleanup_ms = state.watermark_ms
        old = [m for m in state.minutes if m + MINUTE_MS < horizon and m not in state.dirty]
        for minute in old:
            for key in state.minutes.pop(minute):
                del state.buckets[key]
    out.sort(key=lambda a: (a.minute_ms, a.channel, a.metric, a.key))
    return state, out
