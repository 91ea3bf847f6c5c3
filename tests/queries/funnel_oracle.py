"""A pure-Python reference of the funnel semantics (windowFunnel, non-strict), for comparison."""

from __future__ import annotations

from collections import defaultdict


def reference_levels(
    events: list[tuple[str, int, str]],
    steps: list[str],
    window_ms: int,
    date_from: int,
    date_to: int,
) -> dict[str, int]:
    """events: (person, ts_ms, event_type). Returns person -> deepest step reached (entered only)."""
    by_person: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for person, ts, event_type in events:
        by_person[person].append((ts, event_type))
    levels: dict[str, int] = {}
    for person, evs in by_person.items():
        evs.sort()
        best = 0
        for i, (t1, et) in enumerate(evs):
            if et != steps[0] or not date_from <= t1 < date_to:
                continue
            level = 1
            for ts, et2 in evs[i + 1 :]:
                if ts > t1 + window_ms or level == len(steps):
                    break
                if et2 == steps[level]:
                    level += 1
            best = max(best, level)
        if best:
            levels[person] = best
    return levels
