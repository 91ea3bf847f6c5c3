"""The journey catalogue again, this time through the embedded runner into chDB and back."""

from __future__ import annotations

import pytest
from clickhouse_connect.driver.client import Client

from tests.embedded.chdb_runner import run_embedded
from tests.journeys.outcome import check
from tests.journeys.stories import STORIES
from tests.journeys.story import Story

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("story", STORIES, ids=lambda s: s.name)
def test_story_through_the_embedded_runner(story: Story, ch: Client) -> None:
    check(story, run_embedded(story, ch))
