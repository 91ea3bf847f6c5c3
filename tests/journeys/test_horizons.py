"""What happens beyond the dedup horizon (documented in JourneyConfig), through the core only.

Not in the shared catalogue: beyond the horizon the core and storage disagree on purpose (the
re-opened session has the same id as the real one and storage keeps one summary per id).
"""

from __future__ import annotations

import pytest

from streams.core.records import EventRow, SessionSummary
from tests.journeys.core_runner import run_core
from tests.journeys.outcome import check
from tests.journeys.stories import H, pv
from tests.journeys.story import Expect, S, Step, Story

pytestmark = pytest.mark.unit


def resend_after(hours: float) -> Story:
    first = Step(0, "web", "page_view", "w1", None, {"page": "/a"}, id="dup")
    return Story(
        f"event_re_sent_{hours}_hours_later",
        [first, pv(4, "/b"), pv(hours * H, "/x", device="w2"), first],
        Expect([]),
    )


def test_a_re_send_25_hours_later_is_still_dropped_the_person_keeps_its_events() -> None:
    """Past the dedup horizon (24 h) but within the revision horizon (48 h), the person still
    keeps the event (streams.core.revise): the re-send is a duplicate."""
    outcome, records = run_core(resend_after(25))
    assert outcome.duplicates == 1
    assert [r.event_id for r in records if isinstance(r, EventRow)].count("dup") == 1


def test_a_re_send_49_hours_later_is_processed_again_under_the_same_session_id() -> None:
    story = resend_after(49)
    outcome, records = run_core(story)
    assert outcome.duplicates == 0
    rows = [r for r in records if isinstance(r, EventRow) and r.event_id == "dup"]
    assert len(rows) == 2 and not any(r.late for r in rows)
    summaries = [r for r in records if isinstance(r, SessionSummary) and r.person_id == "anon:w1"]
    assert sorted(s.events for s in summaries) == [1, 2]
    assert len({s.session_id for s in summaries}) == 1  # the same id: storage keeps one
    assert [s.bounced for s in summaries if s.events == 1] == [True]


def test_a_re_send_just_inside_the_horizon_is_dropped() -> None:
    story = resend_after(24 - 0.001 / 3600 + 2 / 60)  # watermark = 24 h - 1 ms after the event
    story = Story(
        story.name,
        story.steps,
        Expect(
            [S("anon:w1", 2, ("web",)), S("anon:w2", 1, ("web",), bounced=True)],
            {"bounce": 1},
            duplicates=1,
        ),
    )
    outcome, _ = run_core(story)
    check(story, outcome)
