"""Thresholds are configuration: the same stories under a non-default JourneyConfig / rules."""

from __future__ import annotations

from dataclasses import replace

import pytest

from streams.core.config import MINUTE_MS, JourneyConfig
from streams.core.friction import (
    CheckoutAbandoned,
    CheckoutLoop,
    FrictionRules,
    QuickBack,
    RageClick,
    RepeatContact,
    SearchFrustration,
)
from streams.core.records import SessionSummary
from tests.journeys.core_runner import run_core
from tests.journeys.outcome import check
from tests.journeys.stories import STORIES, H, pv
from tests.journeys.story import Expect, S, Story

pytestmark = pytest.mark.unit

BY_NAME = {story.name: story for story in STORIES}


def rules(**changed: object) -> FrictionRules:
    return replace(FrictionRules(), **changed)


CASES: list[tuple[str, JourneyConfig, dict[str, int]]] = [
    # (story of the catalogue, config, the signals it must now give)
    ("rage_click_three_within_a_second", JourneyConfig(rules=rules(rage_click=RageClick(4))), {}),
    (
        "three_clicks_over_1_2_seconds_are_not_rage",
        JourneyConfig(rules=rules(rage_click=RageClick(window_ms=1_200))),
        {"rage_click": 1},
    ),
    ("quick_back_within_5_seconds", JourneyConfig(rules=rules(quick_back=QuickBack(3_000))), {}),
    (
        "back_after_5_1_seconds_is_not_quick",
        JourneyConfig(rules=rules(quick_back=QuickBack(6_000))),
        {"quick_back": 1},
    ),
    (
        "purchase_59_minutes_after_checkout_converts_it",
        JourneyConfig(rules=rules(checkout_abandoned=CheckoutAbandoned(timeout_ms=30 * MINUTE_MS))),
        {"checkout_abandoned": 1},
    ),
    (
        "checkout_one_backtrack_is_no_loop",
        JourneyConfig(rules=rules(checkout_loop=CheckoutLoop(min_backtracks=1))),
        {"checkout_loop": 1},
    ),
    (
        "two_fruitless_searches_and_a_good_one",
        JourneyConfig(rules=rules(search_frustration=SearchFrustration(min_zero_results=2))),
        {"search_frustration": 1, "bounce": 1},
    ),
    (
        "chat_then_phone_25_hours_later_is_not",
        JourneyConfig(rules=rules(repeat_contact=RepeatContact(window_ms=26 * int(H * 1000)))),
        {"repeat_contact": 1, "bounce": 2},
    ),
    (
        "one_view_and_a_click_at_11s_is_engaged",
        JourneyConfig(engaged_min_duration_ms=20_000),
        {"bounce": 1},
    ),
]


@pytest.mark.parametrize(("name", "config", "signals"), CASES, ids=[c[0] for c in CASES])
def test_rule_thresholds_are_configurable(
    name: str, config: JourneyConfig, signals: dict[str, int]
) -> None:
    default, _ = run_core(BY_NAME[name])
    assert dict(default.signals) != signals  # the change matters
    outcome, _ = run_core(BY_NAME[name], config)
    assert dict(outcome.signals) == signals


def test_session_gap_is_configurable() -> None:
    story = Story(
        "twenty_minutes_apart_with_a_15_minute_gap",
        [pv(0, "/a"), pv(5, "/b"), pv(20 * 60, "/c")],
        Expect([S("anon:w1", 2, ("web",)), S("anon:w1", 1, ("web",), bounced=True)], {"bounce": 1}),
    )
    outcome, _ = run_core(story, JourneyConfig(session_gap_ms=15 * MINUTE_MS))
    check(story, outcome)


def test_grace_is_configurable() -> None:
    # 2 min 1 ms out of order comes after its session closed with the default grace: a revision
    # puts it back (the session, reopened by it, is written open, then closed again); with a
    # 5-minute grace it is simply on time (one row).
    story = BY_NAME["event_2_minutes_and_a_millisecond_behind_is_put_back_in_its_session"]
    for grace_min, rows_written in ((2, [2, 3, 3]), (5, [3])):
        outcome, records = run_core(story, JourneyConfig(grace_ms=grace_min * MINUTE_MS))
        assert outcome.late == 0
        assert sorted(s.events for s in outcome.sessions) == [1, 3]
        w1 = [r.events for r in records if isinstance(r, SessionSummary) and "w1" in r.person_id]
        assert w1 == rows_written, grace_min


def test_retro_window_is_configurable() -> None:
    story = BY_NAME["anonymous_history_exactly_30_days_before_login_is_attributed"]
    outcome, _ = run_core(story, JourneyConfig(retro_window_ms=7 * 24 * int(H * 1000)))
    (event_id,) = story.expect.resolved_persons
    assert outcome.resolved_persons[event_id] == "anon:w4b"
