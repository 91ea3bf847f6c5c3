"""Ordered funnels over persons, with ClickHouse's `windowFunnel` semantics.

Intuition: a person reaches step k when events matching steps 1..k happen in that order, all
within the window from the step-1 event (windowFunnel returns the deepest step reached, over
every possible step-1 event). Persons are resolved through identity links (the rule of
`events_resolved`: each row's stored person, folded by compaction, plus at most one join to the
overrides not yet folded, `person_overrides_pending`), so someone who browsed
anonymously on the app and bought logged in on the web counts once. The breakdown value is that
of the person's first step-1 event in the range. "Time to convert" to step k is measured from
the latest step-1 event before the person's first step-k event (after their first entry) to
that step-k event: the time the converting visit took, not the days between a first look and a
later purchase. A purchase flagged `duplicate_transaction` (a receipt re-sent under a new event
id, already counted) is no step: it is a copy of one.

Options (PostHog's funnel options are the model for names and meaning):
- exclusions (`remove_from_cart:2-3`): a person with a chain steps 1..2, then the excluded
  event, then step 3, all within the window, does not convert past step 2 (capped at `to - 1`);
- conversion over time (`interval` day | week): the funnel of each entry cohort (the period of
  the person's first step-1 event in the range);
- attribution (`utm_source`, `utm_medium`, `utm_campaign` breakdowns): the campaign of the
  person's first (or last) tagged event at or before their entry, looking back
  `ATTRIBUTION_LOOKBACK_DAYS`; `(none)` when there is none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from streams.queries.funnel_sql import funnel_sql
from streams.queries.funnel_steps import FILTER_COLUMNS, Filter, Step, step_condition
from streams.queries.query import Query, QueryError, QueryResult

__all__ = [
    "ATTRIBUTION_LOOKBACK_DAYS",
    "BREAKDOWN_COLUMNS",
    "FILTER_COLUMNS",
    "PENDING_OVERRIDES",
    "Exclusion",
    "Filter",
    "FunnelSpec",
    "FunnelStepRow",
    "Step",
    "funnel_query",
    "funnel_result",
    "funnel_rows",
]

BREAKDOWN_COLUMNS = {"channel": "channel", "device_type": "device_type"}
TOUCH_BREAKDOWNS = ("utm_source", "utm_medium", "utm_campaign")
ATTRIBUTION_LOOKBACK_DAYS = 30
INTERVALS = ("day", "week")

#: One row, one column: whether some person override is not yet folded into the rows (0010).
#: False: `funnel_query(spec, join_overrides=False)` gives the same answer without the join.
PENDING_OVERRIDES = Query("SELECT count() > 0 FROM person_overrides_pending", {})


@dataclass(frozen=True)
class Exclusion:
    """`remove_from_cart:2-3`: that event between steps 2 and 3 stops the person at step 2."""

    step: Step
    from_step: int
    to_step: int

    @classmethod
    def parse(cls, text: str) -> Exclusion:
        match = re.fullmatch(r"(.+):(\d+)-(\d+)", text.strip())
        if not match:
            raise QueryError(f"exclusion {text!r}: expected event[filters]:FROM-TO, e.g. x:2-3")
        return cls(Step.parse(match.group(1)), int(match.group(2)), int(match.group(3)))


@dataclass(frozen=True)
class FunnelSpec:
    steps: tuple[Step, ...]
    window_s: int
    date_from: datetime
    date_to: datetime
    breakdown: str | None = None  # channel | device_type | property:NAME | utm_*
    strict_order: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    exclusions: tuple[Exclusion, ...] = ()
    interval: str | None = None  # day | week
    attribution: str = "first"  # first | last (utm_* breakdowns)


def funnel_query(spec: FunnelSpec, *, join_overrides: bool = True) -> Query:
    """The funnel's SQL. `join_overrides=False` reads each row's stored person only: exact
    when no person override is pending (`streams.clickhouse.person_fold.has_pending_overrides`,
    true right after `parcours compact` or an ingest, which folds them into the rows)."""
    n = len(spec.steps)
    if not 2 <= n <= 16:
        raise QueryError("a funnel needs between 2 and 16 steps")
    if spec.window_s <= 0:
        raise QueryError("the conversion window must be positive")
    if spec.date_to <= spec.date_from:
        raise QueryError("--to must be after --from")
    if spec.interval is not None and spec.interval not in INTERVALS:
        raise QueryError(f"interval {spec.interval!r}: use day or week")
    if spec.attribution not in ("first", "last"):
        raise QueryError(f"attribution {spec.attribution!r}: use first or last")
    params: dict[str, Any] = {
        "window_ms": spec.window_s * 1000,
        "date_from": spec.date_from,
        "date_to": spec.date_to,
    }
    conditions = []
    for i, step in enumerate(spec.steps, 1):
        condition = step_condition(step, f"s{i}", params)
        if i == 1:
            condition += " AND occurred_at >= {date_from:DateTime64(3)} AND occurred_at < {date_to:DateTime64(3)}"
        conditions.append(condition)
    exclusions = []
    for k, exclusion in enumerate(spec.exclusions, 1):
        if not 1 <= exclusion.from_step < exclusion.to_step <= n:
            raise QueryError(
                f"exclusion {exclusion.step.event_type}:{exclusion.from_step}-{exclusion.to_step}: "
                f"steps must satisfy 1 <= FROM < TO <= {n}"
            )
        exclusions.append(
            (
                step_condition(exclusion.step, f"x{k}", params),
                exclusion.from_step,
                exclusion.to_step,
            )
        )
    touch = None
    if spec.breakdown in TOUCH_BREAKDOWNS:
        params["touch_key"] = spec.breakdown
        params["lookback_days"] = ATTRIBUTION_LOOKBACK_DAYS
        touch = spec.attribution
        breakdown = "''"
    else:
        breakdown = _breakdown(spec.breakdown, params)
    sql = funnel_sql(
        conditions,
        breakdown,
        spec.strict_order,
        exclusions=exclusions,
        interval=spec.interval,
        touch=touch,
        join_overrides=join_overrides,
    )
    return Query(sql, params)


def _breakdown(breakdown: str | None, params: dict[str, Any]) -> str:
    if breakdown is None:
        return "'all'"
    if breakdown in BREAKDOWN_COLUMNS:
        return BREAKDOWN_COLUMNS[breakdown]
    if breakdown.startswith("property:") and len(breakdown) > len("property:"):
        params["breakdown_property"] = breakdown.removeprefix("property:")
        return "JSONExtractString(properties, {breakdown_property:String})"
    raise QueryError(
        f"breakdown {breakdown!r}: use channel, device_type, property:NAME, "
        + ", ".join(TOUCH_BREAKDOWNS)
    )


@dataclass(frozen=True)
class FunnelStepRow:
    breakdown: str
    step: int
    event_type: str
    persons: int
    conversion_from_first: float
    conversion_from_previous: float
    median_seconds_from_entry: float | None
    #: The entry cohort's period (first day of it) with `--interval`, else None.
    period: date | None = None


def funnel_rows(spec: FunnelSpec, result: QueryResult) -> list[FunnelStepRow]:
    """Reshape the wide result (one row per breakdown) into one row per (breakdown, step)."""
    rows: list[FunnelStepRow] = []
    for record in result.records():
        first = record["step_1"]
        previous = first
        period = record.get("period")
        for k, step in enumerate(spec.steps, 1):
            persons = record[f"step_{k}"]
            median = record.get(f"median_s_{k}") if k > 1 and persons else None
            rows.append(
                FunnelStepRow(
                    breakdown=str(record["breakdown"]),
                    step=k,
                    event_type=step.event_type,
                    persons=persons,
                    conversion_from_first=persons / first if first else 0.0,
                    conversion_from_previous=persons / previous if previous else 0.0,
                    median_seconds_from_entry=None
                    if median is None or median != median
                    else float(median),
                    period=period.date() if isinstance(period, datetime) else period,
                )
            )
            previous = persons
    return rows


def funnel_result(spec: FunnelSpec, result: QueryResult) -> QueryResult:
    rows = funnel_rows(spec, result)
    columns = [
        "breakdown",
        "step",
        "event_type",
        "persons",
        "conversion_from_first",
        "conversion_from_previous",
        "median_seconds_from_entry",
    ]
    if spec.interval is not None:
        columns.insert(0, "period")
    return QueryResult(columns, [tuple(getattr(r, c) for c in columns) for r in rows])
