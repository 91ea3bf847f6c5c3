"""Pseudonymisation gives the same sessions, signals, links and re-attributions as clear ids:
every story of the catalogue runs through the decoder, the privacy filter (pseudonymising, and
scrubbing as by default) and the core, and its outcome, with each pseudonym read back as the id
it stands for, is what the story expects. No clear customer id, nor the id of a personal
device, is left in any record; the key is in none of them, nor in any error."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from schemas import decode
from streams.core.config import JourneyConfig
from streams.core.identity import is_shared_device
from streams.core.pipeline import JourneyPipeline
from streams.core.records import EventRow, IdentityLink, SessionSummary
from streams.privacy.errors import PrivacyError
from streams.privacy.keys import PrivacyKey
from streams.privacy.policy import PrivacyFilter
from streams.privacy.scrub import Scrubber
from streams.privacy.settings import PrivacySettings, load_key
from tests.journeys.core_runner import NOW, outcome_from_records
from tests.journeys.outcome import Outcome, check
from tests.journeys.privacy_stories import ANNA_AND_BEN
from tests.journeys.revisions import REVISION_STORIES
from tests.journeys.stories import STORIES
from tests.journeys.story import S, Story
from tests.journeys.transaction_stories import TRANSACTION_STORIES

pytestmark = pytest.mark.unit

SECRET = "pseudonymisation test secret"
KEY = PrivacyKey(SECRET)
ALL = [*STORIES, *TRANSACTION_STORIES, *REVISION_STORIES, ANNA_AND_BEN]


def _filter() -> PrivacyFilter:
    return PrivacyFilter(
        KEY,
        scrubber=Scrubber(),
        pseudonymise=True,
        shared_device=partial(is_shared_device, config=JourneyConfig()),
    )


def _run(story: Story) -> tuple[Outcome, list[object]]:
    privacy, pipeline = _filter(), JourneyPipeline()
    records: list[object] = []
    for topic, value in story.messages():
        for event in privacy.apply(decode(value, topic, now=NOW)):
            assert not isinstance(event, Exception)
            records.extend(pipeline.process(event))  # type: ignore[arg-type]
    records.extend(pipeline.finish())
    return outcome_from_records(records, pipeline.counters.duplicates), records


def _clear(story: Story) -> dict[str, str]:
    """pseudonym -> the id it stands for, over the story's ids."""
    ids = {s.customer for s in story.steps} | {s.device for s in story.steps}
    return {KEY.pseudonym(i): i for i in ids if i is not None}


def _back(value: str, clear: dict[str, str]) -> str:
    if value in clear:
        return clear[value]
    if value.startswith("anon:"):
        head, _, rest = value[5:].partition(":")
        return "anon:" + clear.get(head, head) + (":" + rest if rest else "")
    return value


@pytest.mark.parametrize("story", ALL, ids=lambda s: s.name)
def test_pseudonymised_story_concludes_as_in_clear(story: Story) -> None:
    outcome, records = _run(story)
    clear = _clear(story)
    outcome.sessions = [
        S(_back(s.person, clear), s.events, s.channels, s.bounced, s.converted)
        for s in outcome.sessions
    ]
    outcome.links = [(_back(d, clear), _back(c, clear)) for d, c in outcome.links]
    outcome.resolved_persons = {e: _back(p, clear) for e, p in outcome.resolved_persons.items()}
    check(story, outcome)

    customers = {s.customer for s in story.steps if s.customer}
    for r in records:
        if isinstance(r, EventRow):
            assert r.customer_id is None or r.customer_id in clear
            assert r.device_id is None or r.device_id in clear or r.device_type in {"pos", "kiosk"}
        if isinstance(r, SessionSummary | EventRow):
            assert r.person_id not in customers
        if isinstance(r, IdentityLink):
            assert r.customer_id in clear and r.device_id in clear
        assert SECRET not in repr(r)


def test_the_key_is_never_shown_and_is_required(tmp_path: Path) -> None:
    assert SECRET not in repr(KEY) and SECRET not in f"{KEY}"
    settings = PrivacySettings(pseudonymise=True)
    with pytest.raises(PrivacyError, match="PARCOURS_PRIVACY_KEY") as info:
        load_key(settings, tmp_path)
    assert not (tmp_path / "privacy.key").exists()
    assert "secret" not in repr(PrivacySettings(key=SECRET))
    del info


def test_the_embedded_key_is_made_once_private_to_its_owner(tmp_path: Path) -> None:
    first = load_key(PrivacySettings(), tmp_path)
    again = load_key(PrivacySettings(), tmp_path)
    assert first.subject("customer", "c1") == again.subject("customer", "c1")
    assert (tmp_path / "privacy.key").stat().st_mode & 0o077 == 0


def test_rejected_bytes_carry_pseudonyms_not_ids() -> None:
    raw = b'{"event_id":"x","customer_id":"anna@example.fr","device_id":"w1"}'
    (rejection,) = _filter().apply(decode(raw, "clickstream", now=NOW))
    assert not hasattr(rejection, "ts_ms")
    kept = rejection.raw
    assert b"anna" not in kept and b'"w1"' not in kept
    assert KEY.pseudonym("anna@example.fr").encode() in kept
