"""Retention and lifetime value recomputed in plain Python, from the definitions in
`streams.queries.retention`'s docstring (shares no code with the SQL)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta


@dataclass(frozen=True)
class Act:
    person: str
    ts_ms: int
    channel: str
    purchase: bool = False
    value: float = 0.0


def _day(ts_ms: int) -> date:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).date()


def _start(d: date, period: str) -> date:
    if period == "day":
        return d
    return d - timedelta(days=d.weekday()) if period == "week" else d.replace(day=1)


def _offset(cohort: date, d: date, period: str) -> int:
    if period == "day":
        return (d - cohort).days
    if period == "week":
        return (_start(d, "week") - cohort).days // 7
    return (d.year - cohort.year) * 12 + d.month - cohort.month


def _cohorts(
    acts: list[Act], cohort: str, period: str, start_ms: int, end_ms: int
) -> dict[str, tuple[date, int, list[Act]]]:
    """person -> (cohort period, joined ms, their acts before the end)."""
    by_person: dict[str, list[Act]] = defaultdict(list)
    for a in sorted(acts, key=lambda a: a.ts_ms):
        if a.ts_ms < end_ms:
            by_person[a.person].append(a)
    out = {}
    for person, mine in by_person.items():
        firsts = [a for a in mine if a.purchase] if cohort == "first_purchase" else mine
        if not firsts:
            continue
        joined = firsts[0].ts_ms
        if start_ms <= joined < end_ms:
            out[person] = (_start(_day(joined), period), joined, mine)
    return out


def retention(
    acts: list[Act], cohort: str, period: str, activity: str, start_ms: int, end_ms: int
) -> dict[tuple[date, int], tuple[int, int]]:
    """(cohort, offset) -> (cohort persons, active persons)."""
    members = _cohorts(acts, cohort, period, start_ms, end_ms)
    sizes: dict[date, int] = defaultdict(int)
    for c, _, _ in members.values():
        sizes[c] += 1
    active: dict[tuple[date, int], set[str]] = defaultdict(set)
    for person, (c, joined, mine) in members.items():
        for a in mine:
            if a.ts_ms >= joined and (activity == "any" or a.purchase):
                active[(c, _offset(c, _day(a.ts_ms), period))].add(person)
    return {k: (sizes[k[0]], len(v)) for k, v in active.items()}


def value(
    acts: list[Act], cohort: str, period: str, churn_days: int, start_ms: int, end_ms: int
) -> dict[tuple[date, str], tuple[int, int, int, float, float, int]]:
    """(cohort, acquisition channel) -> (persons, buyers, repeat buyers, ltv 30 d, ltv 365 d,
    churned)."""
    members = _cohorts(acts, cohort, period, start_ms, end_ms)
    groups: dict[tuple[date, str], list[tuple[int, list[Act]]]] = defaultdict(list)
    for c, joined, mine in members.values():
        groups[(c, mine[0].channel)].append((joined, mine))
    out = {}
    for key, people in groups.items():
        buyers = sum(any(a.purchase for a in mine) for _, mine in people)
        repeat = sum(sum(a.purchase for a in mine) >= 2 for _, mine in people)

        def ltv(days: int, people: list[tuple[int, list[Act]]] = people) -> float:
            total = sum(
                a.value
                for joined, mine in people
                for a in mine
                if a.purchase and joined <= a.ts_ms < joined + days * 86_400_000
            )
            return round(total / len(people), 2)

        churned = sum(mine[-1].ts_ms < end_ms - churn_days * 86_400_000 for _, mine in people)
        out[key] = (len(people), buyers, repeat, ltv(30), ltv(365), churned)
    return out
