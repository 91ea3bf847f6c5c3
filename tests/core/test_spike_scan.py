"""The multi-scale scan: a short strong rise at a few signals an hour is a spike the CUSUM alone
misses, found at its start, the same whatever the speed of delivery; and its evidence is an
honest bound on the chance that normal traffic gives as many signals."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.core.config import MINUTE_MS
from streams.core.records import MinuteAggregate
from streams.core.spike_scan import glr, strongest_window
from streams.core.spike_tracker import SpikeTracker, restore_tracker, snapshot_tracker
from streams.core.spikes import SpikeSettings
from tests.core.test_spikes import DAY_MIN, T0, replay

pytestmark = pytest.mark.unit


def quiet_shop(days: int, burst: tuple[int, int, int] | None) -> list[MinuteAggregate]:
    """Exact counts: one checkout attempt a minute, one payment failure every 30 minutes
    (3.3 %); `burst` = (from, to, failures): that many failures instead, evenly spread from
    `from` (minutes), and none of the regular ones inside it."""
    rows = []
    for m in range(days * DAY_MIN):
        ts = T0 + m * MINUTE_MS
        rows.append(MinuteAggregate(ts, "web", "events", "begin_checkout", 1, 0.0, "0", 1))
        inside = burst is not None and burst[0] <= m < burst[1]
        if burst is not None and inside:
            failed = (m - burst[0]) * burst[2] % (burst[1] - burst[0]) < burst[2]
        else:
            failed = m % 30 == 15
        if failed:
            rows.append(MinuteAggregate(ts, "web", "friction", "payment_failure", 1, 0.0, "0", 1))
    return rows


BURST = (9 * DAY_MIN + 14 * 60, 9 * DAY_MIN + 14 * 60 + 30, 8)


def test_a_short_burst_at_low_counts_is_found_by_the_scan_and_not_by_the_cusum_alone() -> None:
    """8 failures in 30 minutes where 1 is expected: the CUSUM, weighing each at ln(2.5),
    gathers 8 * 0.92 - 1.5 = 5.8 nats; the scan, at the rise it sees, 8 ln 8 - 7 = 9.6."""
    rows = quiet_shop(11, BURST)
    alone = replay(rows, 5, SpikeTracker(SpikeSettings(scan_threshold=0.0))).spikes()
    assert alone == []
    spikes = replay(rows, 5).spikes()
    assert len(spikes) == 1
    spike = spikes[0]
    assert spike.started_at_ms == T0 + BURST[0] * MINUTE_MS
    assert abs(spike.ended_at_ms - (T0 + BURST[1] * MINUTE_MS)) <= 10 * MINUTE_MS
    assert spike.signals >= 7 and spike.ratio > 4
    assert spike.score >= SpikeSettings().scan_threshold


def test_normal_quiet_traffic_gives_no_spike_with_the_scan() -> None:
    assert replay(quiet_shop(11, None), 5).spikes() == []


@pytest.mark.parametrize("every", [1, 60, 5000])
def test_the_scan_gives_the_same_spikes_whatever_the_speed(every: int) -> None:
    rows = quiet_shop(11, BURST)
    assert replay(rows, every).spikes() == replay(rows, 5).spikes()


@pytest.mark.parametrize("into_burst_min", [10, 50, 70])
def test_a_tracker_restored_inside_the_burst_finds_the_same_spike(into_burst_min: int) -> None:
    """Cut while the burst is being judged (steps are judged 32 min behind the input). The scan
    looks back up to 2 hours at rates that are not saved: a restored tracker
    computes them again from the hours it has, and finds what the uninterrupted one found."""
    rows = quiet_shop(11, BURST)
    cut_ms = T0 + (BURST[0] + into_burst_min) * MINUTE_MS
    head = SpikeTracker()
    head.observe([r for r in rows if r.minute_ms < cut_ms])
    head.advance(cut_ms)
    restored = restore_tracker(snapshot_tracker(head), SpikeSettings(), head.journey)
    restored.observe([r for r in rows if r.minute_ms >= cut_ms])
    restored.advance(rows[-1].minute_ms + MINUTE_MS, final=True)
    expected = replay(rows, 5).spikes()
    assert len(expected) == 1 and restored.spikes() == expected


def _poisson_sf(x: int, mean: float) -> float:
    return 1.0 - sum(math.exp(-mean + i * math.log(mean) - math.lgamma(i + 1)) for i in range(x))


@given(x=st.integers(0, 150), mean=st.floats(0.05, 60.0))
def test_the_evidence_bounds_the_chance_of_as_many_signals(x: int, mean: float) -> None:
    """Chernoff: P(Poisson(e) >= x) <= exp(-GLR), so `scan_threshold` nats caps each window's
    false alarms at exp(-threshold), at any count."""
    assert _poisson_sf(x, mean) <= math.exp(-glr(x, mean)) + 1e-9


def test_the_strongest_window_is_the_one_that_fits_the_rise() -> None:
    quiet = [(0, 0.2, 10)] * 10
    burst = [(3, 0.2, 10)] * 4
    found = strongest_window(
        [*quiet, *burst], min_steps=3, threshold=8.0, min_count=5, min_ratio=2.5
    )
    assert found is not None and found[0] == 4
    assert found[1] == pytest.approx(glr(12, 0.8))
    too_few = strongest_window(burst[:1], min_steps=1, threshold=1.0, min_count=5, min_ratio=2.5)
    assert too_few is None
