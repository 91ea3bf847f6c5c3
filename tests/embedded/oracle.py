"""An independent, batch re-computation of what the streaming core should have stored.

Intuition: the core decides incrementally, with a watermark, state and merges; the oracle sees
the whole input at once and recomputes the same definitions the slow, obvious way (sort each
person's events, cut at gaps and the cap, count). It shares no code with `streams.core`, so a
bug in the core's bookkeeping shows up as a disagreement. It only applies to inputs without late
events and identity merges; the tests choose such inputs or check the parts that hold anyway.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

GAP_MS = 30 * 60_000
CAP_MS = 24 * 3600_000
VIEWS = {"page_view", "screen_view", "view_item_list", "view_item", "view_cart"}


@dataclass(frozen=True)
class OracleEvent:
    event_id: str
    event_type: str
    ts_ms: int
    person_id: str
    results_count: int | None = None


@dataclass(frozen=True)
class OracleSession:
    person_id: str
    started_ms: int
    ended_ms: int
    events: int
    views: int
    bounced: bool
    converted: bool


def sessions_of(events: list[OracleEvent]) -> list[OracleSession]:
    by_person: dict[str, list[OracleEvent]] = defaultdict(list)
    for ev in events:
        by_person[ev.person_id].append(ev)
    out: list[OracleSession] = []
    for person, evs in by_person.items():
        evs.sort(key=lambda e: (e.ts_ms, e.event_id))
        current: list[OracleEvent] = []
        for ev in evs:
            if current and (
                ev.ts_ms - current[-1].ts_ms > GAP_MS or ev.ts_ms - current[0].ts_ms >= CAP_MS
            ):
                out.append(_summary(person, current))
                current = []
            current.append(ev)
        if current:
            out.append(_summary(person, current))
    return out


def _summary(person: str, evs: list[OracleEvent]) -> OracleSession:
    views = sum(1 for e in evs if e.event_type in VIEWS)
    converted = any(e.event_type == "purchase" for e in evs)
    duration = evs[-1].ts_ms - evs[0].ts_ms
    engaged = duration > 10_000 or views >= 2 or converted
    return OracleSession(
        person, evs[0].ts_ms, evs[-1].ts_ms, len(evs), views, not engaged, converted
    )


def key(s: OracleSession) -> tuple[str, int, int, int, int, bool, bool]:
    return (s.person_id, s.started_ms, s.ended_ms, s.events, s.views, s.bounced, s.converted)


def session_counts(sessions: list[OracleSession]) -> Counter[str]:
    return Counter(
        {
            "sessions": len(sessions),
            "bounced": sum(s.bounced for s in sessions),
            "converted": sum(s.converted for s in sessions),
        }
    )
