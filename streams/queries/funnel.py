"""Ordered funnels over persons, with ClickHouse's `windowFunnel` semantics.

Intuition: a person reaches step k when events matching steps 1..k happen in that order, all
within the window from the step-1 event (windowFunnel returns the deepest step reached, over
every possible step-1 event). Persons are resolved through identity links (`events_resolved`),
so someone who browsed anonymously on the app and bought logged in on the web counts once. The
breakdown value is that of the person's first step-1 event in the range. "Time to convert" to
step k is measured from the latest step-1 event before the person's first step-k event (after
their first entry) to that step-k event: the time the converting visit took, not the days
between a first look and a later purchase. A purchase flagged `duplicate_transaction` (a receipt
re-sent under a new event id, already counted) is no step: it is a copy of one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from streams.queries.query import Query, QueryError, QueryResult

BREAKDOWN_COLUMNS = {"channel": "channel", "device_type": "device_type"}
FILTER_COLUMNS = {"channel", "device_type", "page", "item_id", "currency"}
_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass(frozen=True)
class Step:
    """One funnel step: an event type and optional `column=value` / `properties.x=value` filters."""

    event_type: str
    filters: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Step:
        """`purchase` or `purchase[channel=store,properties.coupon=XMAS]`."""
        match = re.fullmatch(r"([a-z0-9_]+)(?:\[(.*)\])?", text.strip())
        if not match:
            raise QueryError(f"step {text!r}: expected event_type or event_type[field=value,…]")
        filters = []
        for item in filter(None, (match.group(2) or "").split(",")):
            name, sep, value = item.partition("=")
            if not sep:
                raise QueryError(f"step {text!r}: filter {item!r} is not field=value")
            filters.append((name.strip(), value.strip()))
        return cls(match.group(1), tuple(filters))


@dataclass(frozen=True)
class FunnelSpec:
    steps: tuple[Step, ...]
    window_s: int
    date_from: datetime
    date_to: datetime
    breakdown: str | None = None  # channel | device_type | property:NAME
    strict_order: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def funnel_query(spec: FunnelSpec) -> Query:
    if not 2 <= len(spec.steps) <= 16:
        raise QueryError("a funnel needs between 2 and 16 steps")
    if spec.window_s <= 0:
        raise QueryError("the conversion window must be positive")
    if spec.date_to <= spec.date_from:
        raise QueryError("--to must be after --from")
    params: dict[str, Any] = {
        "window_ms": spec.window_s * 1000,
        "date_from": spec.date_from,
        "date_to": spec.date_to,
    }
    conditions = []
    for i, step in enumerate(spec.steps, 1):
        if not _TYPE.match(step.event_type):
            raise QueryError(f"step {i}: {step.event_type!r} is not an event type")
        params[f"s{i}_type"] = step.event_type
        parts = [f"event_type = {{s{i}_type:String}}"]
        for j, (name, value) in enumerate(step.filters):
            params[f"s{i}_v{j}"] = value
            if name.startswith("properties."):
                params[f"s{i}_p{j}"] = name.removeprefix("properties.")
                parts.append(
                    f"JSONExtractString(properties, {{s{i}_p{j}:String}}) = {{s{i}_v{j}:String}}"
                )
            elif name in FILTER_COLUMNS:
                parts.append(f"{name} = {{s{i}_v{j}:String}}")
            else:
                raise QueryError(
                    f"step {i}: cannot filter on {name!r}; use one of {sorted(FILTER_COLUMNS)} or properties.NAME"
                )
        if i == 1:
            parts.append(
                "occurred_at >= {date_from:DateTime64(3)} AND occurred_at < {date_to:DateTime64(3)}"
            )
        conditions.append(" AND ".join(parts))
    breakdown = _breakdown(spec.breakdown, params)
    n = len(spec.steps)
    flags = ",\n        ".join(f"({c}) AS s{i}" for i, c in enumerate(conditions, 1))
    mode = ", 'strict_order'" if spec.strict_order else ""
    step_args = ", ".join(f"s{i}" for i in range(1, n + 1))
    # Only step events reach windowFunnel: in strict order, "no other step events in between".
    any_step = " OR ".join(f"s{i}" for i in range(1, n + 1))
    firsts = ",\n        ".join(
        f"minIf(b.ts, b.s{k} AND b.ts >= p.entry_ts) AS f{k}" for k in range(2, n + 1)
    )
    first_cols = ", ".join(f"f.f{k}" for k in range(2, n + 1))
    times = ",\n        ".join(
        f"f.f{k} - maxIf(b.ts, b.s1 AND b.ts <= f.f{k}) AS t{k}" for k in range(2, n + 1)
    )
    counts = ",\n    ".join(f"countIf(p.level >= {k}) AS step_{k}" for k in range(1, n + 1))
    medians = ",\n    ".join(
        f"medianExactIf(t.t{k}, p.level >= {k}) / 1000 AS median_s_{k}" for k in range(2, n + 1)
    )
    sql = f"""WITH base AS (
    SELECT
        resolved_person_id AS person,
        toUInt64(toUnixTimestamp64Milli(occurred_at)) AS ts,
        {breakdown} AS breakdown_value,
        {flags}
    FROM events_resolved
    WHERE occurred_at >= {{date_from:DateTime64(3)}}
      AND occurred_at < {{date_to:DateTime64(3)}} + toIntervalMillisecond({{window_ms:UInt64}})
      AND ({any_step})
      AND NOT duplicate_transaction
),
per_person AS (
    SELECT
        person,
        windowFunnel({{window_ms:UInt64}}{mode})(ts, {step_args}) AS level,
        argMinIf(breakdown_value, ts, s1) AS breakdown,
        minIf(ts, s1) AS entry_ts
    FROM base
    GROUP BY person
    HAVING countIf(s1) > 0
),
step_firsts AS (
    SELECT
        b.person AS person,
        {firsts}
    FROM base AS b
    INNER JOIN per_person AS p ON b.person = p.person
    GROUP BY b.person, p.entry_ts
),
step_times AS (
    SELECT
        b.person AS person,
        {times}
    FROM base AS b
    INNER JOIN step_firsts AS f ON b.person = f.person
    GROUP BY b.person, {first_cols}
)
SELECT
    p.breakdown AS breakdown,
    {counts},
    {medians}
FROM per_person AS p
LEFT JOIN step_times AS t ON p.person = t.person
GROUP BY p.breakdown
ORDER BY step_1 DESC, breakdown"""
    return Query(sql, params)


def _breakdown(breakdown: str | None, params: dict[str, Any]) -> str:
    if breakdown is None:
        return "'all'"
    if breakdown in BREAKDOWN_COLUMNS:
        return BREAKDOWN_COLUMNS[breakdown]
    if breakdown.startswith("property:") and len(breakdown) > len("property:"):
        params["breakdown_property"] = breakdown.removeprefix("property:")
        return "JSONExtractString(properties, {breakdown_property:String})"
    raise QueryError(f"breakdown {breakdown!r}: use channel, device_type or property:NAME")


@dataclass(frozen=True)
class FunnelStepRow:
    breakdown: str
    step: int
    event_type: str
    persons: int
    conversion_from_first: float
    conversion_from_previous: float
    median_seconds_from_entry: float | None


def funnel_rows(spec: FunnelSpec, result: QueryResult) -> list[FunnelStepRow]:
    """Reshape the wide result (one row per breakdown) into one row per (breakdown, step)."""
    rows: list[FunnelStepRow] = []
    for record in result.records():
        first = record["step_1"]
        previous = first
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
    return QueryResult(columns, [tuple(getattr(r, c) for c in columns) for r in rows])
