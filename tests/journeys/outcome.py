"""What a runner concluded from a story, in a form every runner can produce and `check` reads."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from tests.journeys.story import S, Story


@dataclass
class Outcome:
    sessions: list[S]
    signals: Counter[str]
    links: list[tuple[str, str]]
    late: int
    duplicates: int
    merges: int
    #: event_id -> person at query time (identity links applied).
    resolved_persons: dict[str, str] = field(default_factory=dict)
    duplicate_transactions: int = 0
    #: Per-minute aggregates (newest version of each row) and the sessions' revenue.
    revenue: float = 0.0
    conversions: int = 0
    session_revenue: float = 0.0


def resolve_person(
    customer_id: str | None,
    device_id: str | None,
    person_at_processing: str,
    ts_ms: int,
    links: list[tuple[str, str, int, int]],
) -> str:
    """Reference rule for re-attribution at query time (the `events_resolved` view's rule).

    links: (device_id, customer_id, linked_at_ms, retro_window_ms).
    """
    if customer_id:
        return customer_id
    mine = sorted((at, c, w) for d, c, at, w in links if d == device_id)
    if not mine:
        return person_at_processing
    current = [c for at, c, _ in mine if at <= ts_ms]
    if current:
        return current[-1]
    first_at, first_customer, window = mine[0]
    return first_customer if ts_ms >= first_at - window else person_at_processing


def check(story: Story, outcome: Outcome) -> None:
    """Assert a runner's outcome matches the story's expectations, with a readable diff."""
    exp = story.expect

    def key(s: S) -> tuple[str, int, tuple[str, ...], bool, bool]:
        return (s.person, s.events, s.channels, s.bounced, s.converted)

    assert sorted(map(key, outcome.sessions)) == sorted(map(key, exp.sessions)), story.name
    assert dict(outcome.signals) == exp.signals, story.name
    assert outcome.links == exp.links, story.name
    assert outcome.late == exp.late, story.name
    assert outcome.duplicates == exp.duplicates, story.name
    assert outcome.merges == exp.merges, story.name
    assert outcome.duplicate_transactions == exp.duplicate_transactions, story.name
    if exp.revenue is not None:
        assert round(outcome.revenue, 2) == exp.revenue, (story.name, "per-minute revenue")
    if exp.conversions is not None:
        assert outcome.conversions == exp.conversions, (story.name, "per-minute conversions")
    if exp.session_revenue is not None:
        assert round(outcome.session_revenue, 2) == exp.session_revenue, (story.name, "sessions")
    for event_id, person in exp.resolved_persons.items():
        assert outcome.resolved_persons[event_id] == person, (story.name, event_id)
