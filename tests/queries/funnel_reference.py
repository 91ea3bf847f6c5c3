"""The funnel query of main before issue 13, kept as a reference: the answers it gave are the
ones the one-scan funnel (`streams.queries.funnel`) must keep, persons resolved through the
`events_resolved` view and the step times through self-joins. Slow (it reads `events` and the
identity tables once per step), correct, and written independently of the new query's shape.
"""

from __future__ import annotations

import re
from typing import Any

from streams.queries.funnel import BREAKDOWN_COLUMNS, FILTER_COLUMNS, FunnelSpec
from streams.queries.query import Query, QueryError


def reference_funnel_query(spec: FunnelSpec) -> Query:
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
        if not re.match(r"^[a-z][a-z0-9_]{0,63}$", step.event_type):
            raise QueryError(f"step {i}: {step.event_type!r} is not an event type")
        params[f"s{i}_type"] = step.event_type
        parts = [f"event_type = {{s{i}_type:String}}"]
        for j, f in enumerate(step.filters):
            if f.op != "=":
                raise QueryError("the former funnel only knew field=value filters")
            name, value = f.name, f.value
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
