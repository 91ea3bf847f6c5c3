"""The stage watermark: minimum over upstreams, idle ones left out, never backwards."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.core.watermarks import WatermarkTracker, aligned_pauses

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


# -- alignment: which backlogged upstreams to pause ------------------------------------------


def test_alignment_pauses_only_what_runs_ahead_of_the_slowest_backlog() -> None:
    wms = {"a": 1_000, "b": 50_000, "c": 200_000, "quiet": 0}
    # "quiet" is read to its end: old only because nothing new came, it holds nothing back
    assert aligned_pauses(wms, {"a", "b", "c"}, set(), 60_000) == {"c"}
    # the slowest backlogged upstream is never paused, however far others are
    assert aligned_pauses({"a": 0, "b": 10**9}, {"a", "b"}, set(), 1) == {"b"}
    assert aligned_pauses(wms, set(), {"c"}, 60_000) == set()  # no backlog: resume all


def test_alignment_resumes_a_paused_upstream_within_half_the_skew() -> None:
    paused = {"c"}
    assert aligned_pauses({"a": 150_000, "c": 200_000}, {"a", "c"}, paused, 60_000) == {"c"}
    assert aligned_pauses({"a": 170_000, "c": 200_000}, {"a", "c"}, paused, 60_000) == set()
    # a running upstream is paused only beyond the full skew
    assert aligned_pauses({"a": 150_000, "c": 200_000}, {"a", "c"}, set(), 60_000) == set()


def test_alignment_ignores_upstreams_without_a_watermark() -> None:
    assert aligned_pauses({"a": 0}, {"a", "new"}, set(), 10) == set()


@given(
    st.dictionaries(st.sampled_from("abcdef"), st.integers(0, 10**6), min_size=1),
    st.integers(1, 10**5),
    st.sets(st.sampled_from("abcdef")),
)
def test_alignment_always_leaves_the_slowest_backlogged_upstream_running(
    wms: dict[str, int], skew: int, paused: set[str]
) -> None:
    backlogged = set(wms)
    keep = aligned_pauses(wms, backlogged, paused, skew)
    assert min(wms, key=wms.__getitem__) not in keep
    assert keep <= backlogged
    slowest = min(wms.values())
    assert all(wms[name] - slowest > skew // 2 for name in keep)
