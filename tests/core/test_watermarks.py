"""The stage watermark: minimum over upstreams, idle ones left out, never backwards."""

from __future__ import annotations

import pytest

from streams.core.watermarks import WatermarkTracker

pytestmark = pytest.mark.unit


def test_minimum_of_active_upstreams() -> None:
    t = WatermarkTracker(idle_after_s=5)
    t.expect(["a", "b"], now_s=0)
    t.observe("a", 1_000, now_s=0)
    assert t.watermark(now_s=1) < 0  # b has not spoken yet
    t.observe("b", 500, now_s=1)
    assert t.watermark(now_s=1) == 500
    t.observe("b", 2_000, now_s=2)
    assert t.watermark(now_s=2) == 1_000


def test_idle_upstreams_stop_holding_back_and_silence_lets_time_pass() -> None:
    t = WatermarkTracker(idle_after_s=5)
    t.expect(["a", "b"], now_s=0)
    t.observe("a", 1_000, now_s=4)
    assert t.watermark(now_s=6) == 1_000  # b never spoke: idle after 5 s
    t.observe("a", 3_000, now_s=6)
    t.observe("b", 2_000, now_s=7)
    assert t.watermark(now_s=7) == 2_000
    assert t.watermark(now_s=20) == 20_000  # everyone silent: time passes with the wall clock


def test_never_backwards() -> None:
    t = WatermarkTracker(idle_after_s=5)
    t.observe("a", 5_000, now_s=0)
    assert t.watermark(now_s=0) == 5_000
    t.observe("b", 1_000, now_s=1)
    assert t.watermark(now_s=1) == 5_000
