"""The spike detector: decided in event time from the per-minute aggregates, the same spikes
whatever the speed, cut or order of delivery, none for more traffic at the same rates."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.config import HOUR_MS, MINUTE_MS
from streams.core.records import FrictionSpike, MinuteAggregate
from streams.core.spike_baseline import baseline_rate
from streams.core.spike_tracker import SpikeTracker, restore_tracker, snapshot_tracker
from streams.core.spikes import SpikeSettings

pytestmark = pytest.mark.unit

T0 = 1_767_225_600_000  # 2026-01-01T00:00Z, a Thursday
DAY_MIN = 1440


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def month(
    *,
    days: int = 10,
    checkouts_per_min: float = 10.0,
    rate: float = 0.03,
    incident: tuple[int, int, float] | None = None,
    double_from: int | None = None,
    seed: int = 1,
) -> list[MinuteAggregate]:
    """Per-minute checkout attempts and payment failures on the web: a failure rate of `rate`
    (times the factor inside `incident` = (from, to, factor), in minutes); traffic doubles from
    minute `double_from` (same rate)."""
    rng = random.Random(seed)
    rows = []
    for m in range(days * DAY_MIN):
        mean = checkouts_per_min * (2 if double_from is not None and m >= double_from else 1)
        n = _poisson(rng, mean)
        p = rate * (incident[2] if incident and incident[0] <= m < incident[1] else 1)
        x = sum(1 for _ in range(n) if rng.random() < p)
        ts = T0 + m * MINUTE_MS
        rows.append(MinuteAggregate(ts, "web", "events", "begin_checkout", n, 0.0, "0", 1))
        if x:
            rows.append(MinuteAggregate(ts, "web", "friction", "payment_failure", x, 0.0, "0", 1))
    return rows


def replay(
    rows: list[MinuteAggregate], every_min: int, tracker: SpikeTracker | None = None
) -> SpikeTracker:
    """Deliver in event-time order, the watermark moving every `every_min` minutes."""
    tracker = tracker or SpikeTracker()
    i = 0
    last = rows[-1].minute_ms
    minute_ms = rows[0].minute_ms
    while minute_ms <= last:
        batch = []
        while i < len(rows) and rows[i].minute_ms <= minute_ms:
            batch.append(rows[i])
            i += 1
        tracker.observe(batch)
        if (minute_ms // MINUTE_MS) % every_min == 0:
            tracker.advance(minute_ms)
        minute_ms += MINUTE_MS
    tracker.advance(last + MINUTE_MS, final=True)
    return tracker


def _window(spike: FrictionSpike) -> tuple[float, float]:
    return ((spike.started_at_ms - T0) / MINUTE_MS, (spike.ended_at_ms - T0) / MINUTE_MS)


def test_a_payment_outage_is_one_spike_with_its_start_and_end() -> None:
    start = 8 * DAY_MIN + 18 * 60
    rows = month(incident=(start, start + 240, 5.0))
    spikes = replay(rows, 5).spikes()
    assert len(spikes) == 1
    spike = spikes[0]
    begin, end = _window(spike)
    assert abs(begin - start) <= 15 and abs(end - (start + 240)) <= 15
    assert spike.type == "payment_failure" and spike.channel == "web"
    assert spike.status == "closed" and 3.5 < spike.ratio < 6.5
    assert spike.expected == pytest.approx(0.03, rel=0.2)


def test_normal_traffic_and_doubled_traffic_at_the_same_rate_give_no_spike() -> None:
    assert replay(month(seed=2), 5).spikes() == []
    assert replay(month(seed=3, double_from=6 * DAY_MIN), 5).spikes() == []


def test_nothing_is_decided_before_the_baseline_has_enough_signals() -> None:
    # the first hours would be a spike against any baseline, but there is none yet
    rows = month(days=2, incident=(0, 180, 5.0))
    assert [s for s in replay(rows, 5).spikes() if s.started_at_ms < T0 + 3 * HOUR_MS] == []


def test_low_counts_need_more_evidence_than_a_couple_of_signals() -> None:
    # 6 checkout attempts an hour, 3 % failing: a failure or two more is not a spike
    rows = month(days=14, checkouts_per_min=0.1, seed=4)
    assert replay(rows, 5).spikes() == []


@settings(max_examples=8, deadline=None)
@given(every=st.sampled_from([1, 7, 60, 500, 5000]), seed=st.integers(1, 3))
def test_the_speed_of_delivery_does_not_change_the_spikes(every: int, seed: int) -> None:
    start = 7 * DAY_MIN + 600
    rows = month(days=8, incident=(start, start + 90, 4.0), seed=seed)
    assert replay(rows, every).spikes() == replay(rows, 5).spikes()


def test_late_data_revises_a_spike_and_withdraws_one_that_was_not() -> None:
    start = 7 * DAY_MIN + 600
    rows = month(days=8, incident=(start, start + 120, 4.0))
    complete = replay(rows, 5).spikes()
    assert len(complete) == 1
    # Three quarters of the incident's checkout attempts arrive late (a late file): at first the
    # rate looks far higher and its minutes are judged so; three hours later the attempts
    # arrive, the minutes are revised, and the spikes end as if nothing had been late.
    first, late = [], []
    for row in rows:
        inside = T0 + start * MINUTE_MS <= row.minute_ms < T0 + (start + 120) * MINUTE_MS
        if inside and row.metric == "events":
            first.append(replace(row, count=row.count // 4))
            late.append(replace(row, version=2))
        else:
            first.append(row)
    tracker = SpikeTracker()
    emitted: list[FrictionSpike] = []
    cut = T0 + (start + 300) * MINUTE_MS
    for minute_rows in _by_minute(first):
        tracker.observe(minute_rows)
        at = minute_rows[0].minute_ms
        if at == cut:
            tracker.observe(late)
        if (at // MINUTE_MS) % 5 == 0:
            emitted.extend(tracker.advance(at))
    emitted.extend(tracker.advance(first[-1].minute_ms + MINUTE_MS, final=True))
    assert tracker.spikes() == complete
    final: dict[str, FrictionSpike] = {}
    for spike_row in emitted:
        final[spike_row.spike_id] = spike_row
    assert sorted(r.spike_id for r in final.values() if not r.is_deleted) == [
        s.spike_id for s in complete
    ]


def _by_minute(rows: list[MinuteAggregate]) -> list[list[MinuteAggregate]]:
    out: list[list[MinuteAggregate]] = []
    for row in rows:
        if out and out[-1][0].minute_ms == row.minute_ms:
            out[-1].append(row)
        else:
            out.append([row])
    return out


def test_a_restored_tracker_carries_on_as_the_uninterrupted_one() -> None:
    start = 7 * DAY_MIN + 600
    rows = month(days=8, incident=(start, start + 90, 4.0))
    cut = len(rows) * 9 // 10
    head = SpikeTracker()
    head.observe(rows[:cut])
    head.advance(rows[cut - 1].minute_ms)
    restored = restore_tracker(snapshot_tracker(head), SpikeSettings(), head.journey)
    restored.observe(rows[cut:])
    restored.advance(rows[-1].minute_ms + MINUTE_MS, final=True)
    assert restored.spikes() == replay(rows, 5).spikes()


def test_settings_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="divide an hour"):
        SpikeSettings(step_ms=7 * MINUTE_MS)
    with pytest.raises(ValueError, match="target_ratio"):
        SpikeSettings(target_ratio=1.0)


def evenings(*, weeks: int, double_from_day: int | None) -> list[MinuteAggregate]:
    """Exact counts (no noise): 200 checkout attempts a minute, payment failures at 4 % from
    18:00 to 22:00 and 2.5 % otherwise, every day alike; from day `double_from_day` twice the
    attempts at the same rates (a second population joins)."""
    rows = []
    for m in range(weeks * 7 * DAY_MIN):
        doubled = double_from_day is not None and m >= double_from_day * DAY_MIN
        n = 400 if doubled else 200
        evening = 18 * 60 <= m % DAY_MIN < 22 * 60
        ts = T0 + m * MINUTE_MS
        rows.append(MinuteAggregate(ts, "web", "events", "begin_checkout", n, 0.0, "0", 1))
        if m % 5 == 0:  # the step's failures, in its first minute: exactly 4 % or 2.5 % of 5n
            x = 5 * n * (40 if evening else 25) // 1000
            rows.append(MinuteAggregate(ts, "web", "friction", "payment_failure", x, 0.0, "0", 1))
    return rows


def test_doubled_traffic_at_constant_rates_leaves_the_baseline_where_it_was() -> None:
    """An evening's expected rate is its own rate in the same hours of past weeks, shrunk
    towards the day's by a prior worth a few hours of traffic. That prior must be measured in
    the traffic of the weeks it is weighed against: measured in today's, twice the traffic
    made the past evenings count for less and pulled the evening's baseline towards the day's
    rate (nearer to a false spike), although no rate had changed."""
    doubled_day = 36
    plain = replay(evenings(weeks=7, double_from_day=None), 60)
    doubled = replay(evenings(weeks=7, double_from_day=doubled_day), 60)
    assert plain.spikes() == [] and doubled.spikes() == []
    settings_ = plain.settings
    series = ("payment_failure", "web", "")
    for day in (doubled_day + 1, doubled_day + 5, 48):  # week cells before and after the change
        for hour_of_day in (3, 19):
            hour = (T0 + (day * 24 + hour_of_day) * HOUR_MS) // HOUR_MS
            expected = baseline_rate(plain.series[series], hour, settings_)
            assert expected is not None
            assert baseline_rate(doubled.series[series], hour, settings_) == pytest.approx(
                expected, rel=1e-9
            )
            # and it is the evening's own rate, not the day's
            assert expected > 0.03 if hour_of_day == 19 else expected < 0.027
