"""Every story of the catalogue through the pure core."""

from __future__ import annotations

import pytest

from tests.journeys.core_runner import run_core
from tests.journeys.outcome import check
from tests.journeys.stories import STORIES
from tests.journeys.story import Story

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("story", STORIES, ids=lambda s: s.name)
def test_story_through_the_core(story: Story) -> None:
    outcome, _ = run_core(story)
    check(story, outcome)
