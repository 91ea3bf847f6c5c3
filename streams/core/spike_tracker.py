"""Friction spikes of every series, fed by the per-minute aggregates: the one home of the step
that comes after the journey.

Intuition: the per-minute aggregates are already the journey's conclusions counted in event
time, revised when late data changes them (a minute is written again, whole, with a higher
version). So the detector reads nothing else: each `MinuteAggregate` of a friction type (the
numerator) or of what that type is a rate of (`streams.core.spikes.RATES`, the denominator)
changes its series' step counts by the difference with the minute's previous count. A step is
judged once its counts have settled in event time: signals decided when a session closes
(a bounce, a payment error not followed by a purchase) and sessions themselves are counted
`session_gap + grace` after they happen, timed-out checkout attempts `checkout timeout + grace`
after. A runner calls `observe` with what the journey emitted and `advance` with the watermark;
out come `FrictionSpike` rows for spikes that are new or changed (a new version), and
withdrawals of spikes that late data undid. The same minutes give the same spikes whatever
the speed, order or cut of the input (tests/core/test_spikes.py).

Series: one per friction type and channel (`device_type` ''), and one per friction type,
channel and device type, from the minutes counted by device (`streams.core.aggregates`,
"by device"). A device-type series is judged like any other, against its own baseline: a
checkout bug in the tablet app alone is a spike of `app`/`tablet` even when the app as a whole
looks only a little worse, and a series too small to rest a baseline on (`min_baseline_count`
signals) or to reach `min_count` signals decides nothing, so thin device types stay quiet.
"""

from __future__ import annotations

from dataclasses import asdict, astuple, dataclass, field, fields, replace
from typing import Any

from streams.core.config import HOUR_MS, JourneyConfig
from streams.core.identifiers import stable_hash64
from streams.core.records import FrictionSpike, MinuteAggregate
from streams.core.spikes import (
    CHECKOUT_TIMED,
    RATES,
    Decision,
    SeriesState,
    Spike,
    SpikeSettings,
    add_counts,
    judge_until,
    spikes_of,
)

#: Channels a friction signal can carry (sessions across channels count under `omni`, which
#: no signal does: such sessions are in no channel's denominator).
SPIKE_CHANNELS = ("web", "app", "store")
_BY_DENOMINATOR: dict[tuple[str, str], tuple[str, ...]] = {}
for _type, _denominator in RATES.items():
    _BY_DENOMINATOR[_denominator] = (*_BY_DENOMINATOR.get(_denominator, ()), _type)
#: The per-minute metrics split by device type, and the metric of their totals.
_DEVICE_METRICS = {
    "friction_by_device": "friction",
    "events_by_device": "events",
    "sessions_started_by_device": "sessions_started",
}

MinuteKey = tuple[int, str, str, str, str]
#: (friction type, channel, device type): device type '' is the channel's every device.
SeriesKey = tuple[str, str, str]
_DECISION_FIELDS = tuple(f.name for f in fields(Decision))


def spike_id_for(signal_type: str, channel: str, device_type: str, started_at_ms: int) -> str:
    """A spike is named after its series and its start: a replay names it the same."""
    return "k-" + format(
        stable_hash64(signal_type, channel, device_type, str(started_at_ms)), "016x"
    )


@dataclass(slots=True)
class SpikeTracker:
    """The spikes of every (friction type, channel[, device type]), from the per-minute
    aggregates."""

    settings: SpikeSettings = field(default_factory=SpikeSettings)
    journey: JourneyConfig = field(default_factory=JourneyConfig)
    #: (minute, shard, channel, metric, key) -> the count last seen (revisions send whole counts).
    minutes: dict[MinuteKey, int] = field(default_factory=dict)
    series: dict[SeriesKey, SeriesState] = field(default_factory=dict)
    #: spike id -> (the row last written, without its version; its version).
    emitted: dict[str, tuple[FrictionSpike, int]] = field(default_factory=dict)
    watermark_ms: int = 0
    last_step: int = -1
    forgot_at_ms: int = 0

    def settle_ms(self, signal_type: str) -> int:
        """How far behind the watermark a step's counts are complete (module docstring)."""
        j = self.journey
        if signal_type in CHECKOUT_TIMED:
            return j.rules.checkout_abandoned.timeout_ms + j.grace_ms
        return j.session_gap_ms + j.grace_ms

    def observe(self, records: list[Any]) -> None:
        """Take the per-minute aggregates among `records` (anything else is ignored)."""
        step_ms = self.settings.step_ms
        for agg in records:
            if not isinstance(agg, MinuteAggregate) or agg.channel not in SPIKE_CHANNELS:
                continue
            metric, name, device_type = agg.metric, agg.key, ""
            if metric in _DEVICE_METRICS:
                metric = _DEVICE_METRICS[metric]
                if metric == "sessions_started":
                    name, device_type = "", agg.key
                else:
                    name, _, device_type = agg.key.rpartition("@")
                if not device_type:
                    continue
            if metric == "friction":
                types: tuple[str, ...] = (name,) if name in RATES else ()
            else:
                types = _BY_DENOMINATOR.get((metric, name), ())
            if not types:
                continue
            key = (agg.minute_ms, agg.shard, agg.channel, agg.metric, agg.key)
            delta = agg.count - self.minutes.get(key, 0)
            self.minutes[key] = agg.count
            if not delta:
                continue
            step = agg.minute_ms // step_ms
            self.last_step = max(self.last_step, step)
            for signal_type in types:
                state = self._series((signal_type, agg.channel, device_type))
                if metric == "friction":
                    add_counts(state, step, delta, 0)
                else:
                    add_counts(state, step, 0, delta)

    def _series(self, key: SeriesKey) -> SeriesState:
        state = self.series.get(key)
        if state is None:
            state = self.series[key] = SeriesState()
        return state

    def advance(self, watermark_ms: int, *, final: bool = False) -> list[FrictionSpike]:
        """Judge every step settled by `watermark_ms` (`final`: the input is complete, judge
        every step seen) and return the rows of spikes that changed."""
        self.watermark_ms = max(self.watermark_ms, watermark_ms)
        step_ms = self.settings.step_ms
        for (signal_type, _, _), state in sorted(self.series.items()):
            # Never past the newest minute seen: a watermark at the end of time (a finished
            # input) has nothing to judge beyond it, and a quiet stretch is judged once the
            # minutes after it arrive (the same decisions, as they are the same counts).
            until = self.last_step + 1
            if not final:
                until = min(until, (self.watermark_ms - self.settle_ms(signal_type)) // step_ms)
            judge_until(state, until, self.settings)
        self._forget_minutes()
        return self._changes()

    def spikes(self) -> list[FrictionSpike]:
        """Every spike known now (rows as they would be written, version 1)."""
        rows = []
        for key, state in sorted(self.series.items()):
            for spike in spikes_of(state, self.settings):
                rows.append(self._row(key, spike))
        return sorted(rows, key=lambda r: (r.started_at_ms, r.type, r.channel, r.device_type))

    def gauges(self) -> list[tuple[str, str, bool, float]]:
        """(type, channel, spike open now, observed/expected over the last hour judged), for
        every channel-level series with a baseline: what Prometheus shows, computed from event
        time (device types are in the table, not in the gauges' labels)."""
        out = []
        sph = self.settings.steps_per_hour
        for (signal_type, channel, device_type), state in sorted(self.series.items()):
            if device_type or state.next_step is None or state.rate is None:
                continue
            x = n = 0
            for step in range(state.next_step - sph, state.next_step):
                cell = state.counts.get(step)
                if cell is not None:
                    x += cell[0]
                    n += cell[1]
            e = state.rate * n
            ratio = x / e if e > 0 else (1.0 if x == 0 else float(x))
            out.append((signal_type, channel, state.decision.spike is not None, ratio))
        return out

    def _row(self, key: SeriesKey, spike: Spike) -> FrictionSpike:
        signal_type, channel, device_type = key
        step_ms = self.settings.step_ms
        started = spike.start_step * step_ms
        return FrictionSpike(
            spike_id=spike_id_for(signal_type, channel, device_type, started),
            type=signal_type,
            channel=channel,
            device_type=device_type,
            started_at_ms=started,
            ended_at_ms=(spike.end_step + 1) * step_ms,
            observed=round(spike.observed, 6),
            expected=round(spike.expected, 6),
            ratio=round(spike.ratio, 3) if spike.e > 0 else 0.0,
            score=round(spike.score, 2),
            status="open" if spike.open else "closed",
            signals=spike.x,
            expected_signals=round(spike.e, 2),
            denominator=spike.n,
        )

    def _changes(self) -> list[FrictionSpike]:
        current = {row.spike_id: row for row in self.spikes()}
        out = []
        for spike_id, row in current.items():
            before = self.emitted.get(spike_id)
            if before is not None and before[0] == row:
                continue
            version = 1 if before is None else before[1] + 1
            self.emitted[spike_id] = (row, version)
            out.append(_versioned(row, version))
        rewind_steps = self.settings.rewind_ms // self.settings.step_ms
        for spike_id, (row, version) in list(self.emitted.items()):
            if spike_id in current:
                continue
            state = self.series.get((row.type, row.channel, row.device_type))
            judged = (state.next_step or 0) if state is not None else 0
            if row.ended_at_ms // self.settings.step_ms >= judged - rewind_steps:
                out.append(_versioned(row, version + 1, deleted=True))  # undone by late data
            del self.emitted[spike_id]  # or aged out of the detector: forgotten, not undone
        return out

    def _forget_minutes(self) -> None:
        """Minutes older than the rewind horizon can no longer be revised: forget them, once
        an hour of event time (a scan of every minute kept)."""
        if self.watermark_ms - self.forgot_at_ms < HOUR_MS:
            return
        self.forgot_at_ms = self.watermark_ms
        horizon = self.watermark_ms - self.settings.rewind_ms - 2 * HOUR_MS
        for key in [k for k in self.minutes if k[0] < horizon]:
            del self.minutes[key]


def _versioned(row: FrictionSpike, version: int, *, deleted: bool = False) -> FrictionSpike:
    return replace(row, version=version, is_deleted=deleted)


def snapshot_tracker(tracker: SpikeTracker) -> dict[str, Any]:
    """The tracker's whole state as JSON-able plain data (saved with the journey's)."""
    return {
        "minutes": [[*k, n] for k, n in tracker.minutes.items()],
        "series": [[t, ch, dt, _series_data(s)] for (t, ch, dt), s in tracker.series.items()],
        "emitted": [[asdict(row), version] for row, version in tracker.emitted.values()],
        "watermark_ms": tracker.watermark_ms,
        "last_step": tracker.last_step,
    }


def restore_tracker(
    data: dict[str, Any], settings: SpikeSettings, journey: JourneyConfig
) -> SpikeTracker:
    """A tracker carrying on from `snapshot_tracker`'s data."""
    tracker = SpikeTracker(settings, journey)
    tracker.minutes = {(m, sh, ch, me, k): n for m, sh, ch, me, k, n in data["minutes"]}
    # A snapshot from before device types were split has [type, channel, data] entries.
    tracker.series = {
        (t, ch, str(rest[0]) if len(rest) == 2 else ""): _series_of(rest[-1])
        for t, ch, *rest in data["series"]
    }
    for row, version in data["emitted"]:
        spike = FrictionSpike(**row)
        tracker.emitted[spike.spike_id] = (spike, version)
    tracker.watermark_ms = data["watermark_ms"]
    tracker.last_step = data["last_step"]
    return tracker


def _decision_data(d: Decision) -> list[Any]:
    return [
        list(getattr(d, f)) if f in ("tail", "rise") else getattr(d, f) for f in _DECISION_FIELDS
    ]


def _decision_of(values: list[Any]) -> Decision:
    d = Decision(**dict(zip(_DECISION_FIELDS, values, strict=True)))
    if d.spike is not None:
        start, x, e, n, peak = d.spike
        d.spike = (start, x, e, n, peak)
    d.tail = [(x, e, n) for x, e, n in d.tail]
    d.rise = [(x, e, n) for x, e, n in d.rise]
    return d


def _series_data(s: SeriesState) -> dict[str, Any]:
    return {
        "counts": [[k, *v] for k, v in s.counts.items()],
        "hours": [[k, *v] for k, v in s.hours.items()],
        "next_step": s.next_step,
        "decision": _decision_data(s.decision),
        "closed": [list(astuple(c)) for c in s.closed],
        "checkpoints": [[h, _decision_data(d)] for h, d in s.checkpoints.items()],
        "rewind_to": s.rewind_to,
    }


def _series_of(data: dict[str, Any]) -> SeriesState:
    s = SeriesState()
    s.counts = {k: [x, n] for k, x, n in data["counts"]}
    s.hours = {k: (x, n) for k, x, n in data["hours"]}
    s.next_step = data["next_step"]
    s.decision = _decision_of(data["decision"])
    s.closed = [Spike(*c) for c in data["closed"]]
    s.checkpoints = {h: _decision_of(d) for h, d in data["checkpoints"]}
    s.rewind_to = data["rewind_to"]
    return s
