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


def reference_levels_strict(
    events: list[tuple[str, int, str]],
    steps: list[str],
    window_ms: int,
    date_from: int,
    date_to: int,
) -> dict[str, int]:
    """windowFunnel(window, 'strict_order') as ClickHouse documents it, for distinct step types.

    Intuition: the person's step events are read in time order once. A step-1 event (re)starts
    the chain; step k extends the chain if step k-1 was reached within the window of that
    chain's start; but once a chain has started, a step event whose previous step was never
    reached breaks the sequence and the person stops at the steps reached so far.
    """
    index = {event_type: i for i, event_type in enumerate(steps)}
    by_person: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for person, ts, event_type in events:
        if event_type not in index or not date_from <= ts < date_to + window_ms:
            continue
        if index[event_type] == 0 and not ts < date_to:
            continue  # an entry event after the range is no step event at all
        by_person[person].append((ts, index[event_type]))
    levels: dict[str, int] = {}
    for person, evs in by_person.items():
        evs.sort()
        chain: list[int | None] = [None] * len(steps)  # start time of the chain reaching step k
        started = False
        for ts, k in evs:
            if k == 0:
                chain[0], started = ts, True
            elif started and chain[k - 1] is None:
                break
            elif (start := chain[k - 1]) is not None and ts <= start + window_ms:
                chain[k] = start
                if k == len(steps) - 1:
                    break
        level = next((k for k, start in enumerate(chain) if start is None), len(steps))
        if started:
            levels[person] = level
    return levels
