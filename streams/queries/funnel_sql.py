"""The funnel's SQL: one scan of `events`, one small join, one aggregation per person.

Intuition: everything a funnel reports is a function of one person's step events, so the query
reads each step event once, gives it its person (the customer it names, else the device's
override, else its stored person: `person_overrides`, 0008) and folds each person's events into
the funnel level (windowFunnel), the entry (first step-1 event) and, per step, the list of its
times; the time to convert to step k is then computed on those short lists (first step-k time at
or after the entry, minus the latest step-1 time before it). The former query rebuilt the
resolved view and self-joined the step events three times (10x the cost of windowFunnel alone
over 10M events). Exclusions are one more windowFunnel each over the same rows (the chain
steps 1..FROM, the excluded event, step TO); a touch breakdown (utm_*) keeps the person's
tagged events too, from a lookback before the range, and picks one at or before the entry.

Persons folded into the rows (0010): the join reads `person_overrides_pending`, the overrides
of devices touched since the last compaction (`streams/clickhouse/person_fold.py`); every other
row already carries its resolved person. When none are pending (`join_overrides=False`, decided
by the caller from `has_pending_overrides`), the join is left out altogether: ClickHouse's ASOF
join costs a good part of the query even over an empty table.
"""

from __future__ import annotations

RANGE_FROM = "{date_from:DateTime64(3)}"


def funnel_sql(
    conditions: list[str],
    breakdown: str,
    strict_order: bool,
    *,
    exclusions: list[tuple[str, int, int]],
    interval: str | None,
    touch: str | None,
    join_overrides: bool = True,
) -> str:
    n = len(conditions)
    steps = [f"s{i}" for i in range(1, n + 1)]
    xs = [f"x{k}" for k in range(1, len(exclusions) + 1)]
    flags = [f"({c}) AS s{i}" for i, c in enumerate(conditions, 1)]
    flags += [f"({c}) AS x{k}" for k, (c, _, _) in enumerate(exclusions, 1)]
    wanted = steps + xs
    scan_from = RANGE_FROM
    columns = ["device_id", "customer_id"] if join_overrides else []
    columns += ["person_id", "occurred_at"]
    columns.append(f"{breakdown} AS breakdown_value")
    if touch is not None:
        columns.append("JSONExtractString(properties, {touch_key:String}) AS touch")
        wanted.append("touch != ''")
        scan_from = f"{RANGE_FROM} - toIntervalDay({{lookback_days:UInt32}})"
    inner = ",\n            ".join(columns + flags)
    # Rows read before the range are touches only: they are no step and no exclusion.
    in_range = f" AND e.occurred_at >= {RANGE_FROM}" if touch is not None else ""
    carried = ", ".join(
        f"(e.{f}{in_range}) AS {f}" if in_range else f"e.{f} AS {f}" for f in steps + xs
    )
    touch_col = ",\n        e.touch AS touch" if touch is not None else ""
    mode = ", 'strict_order'" if strict_order else ""
    any_step = " OR ".join(steps)
    step_args = ", ".join(steps)
    # Only step events reach the funnel's windowFunnel (the If): in strict order, "no other
    # step events in between"; exclusion and touch rows must not break a chain.
    funnel = (
        f"windowFunnelIf({{window_ms:UInt64}}{mode})(ts, {step_args}, {any_step})"
        if xs or touch is not None
        else f"windowFunnel({{window_ms:UInt64}}{mode})(ts, {step_args})"
    )
    aggregates = [
        f"{funnel} AS raw_level",
        "argMinIf(breakdown_value, ts, s1) AS first_breakdown",
    ]
    aggregates += [f"groupArrayIf(ts, s{k}) AS ts_{k}" for k in range(1, n + 1)]
    for k, (_, start, end) in enumerate(exclusions, 1):
        chain = ", ".join([*steps[:start], f"x{k}", f"s{end}"])
        aggregates.append(f"windowFunnel({{window_ms:UInt64}})(ts, {chain}) AS excluded_{k}")
    if touch is not None:
        aggregates.append("groupArrayIf((ts, touch), touch != '') AS touches")
    caps = [
        f"if(excluded_{k} >= {start + 2}, {end - 1}, {n})"
        for k, (_, start, end) in enumerate(exclusions, 1)
    ]
    level = f"least(raw_level, {', '.join(caps)})" if caps else "raw_level"
    if touch is None:
        breakdown_out = "first_breakdown"
    else:
        pick = "1" if touch == "first" else "-1"
        breakdown_out = (
            "if(empty(arrayFilter(t -> t.1 <= entry_ts, touches)), '(none)', "
            f"arraySort(arrayFilter(t -> t.1 <= entry_ts, touches))[{pick}].2)"
        )
    period_sql = {
        None: None,
        "day": "toDate(fromUnixTimestamp64Milli(toInt64(entry_ts), 'UTC'))",
        "week": "toMonday(fromUnixTimestamp64Milli(toInt64(entry_ts), 'UTC'))",
    }[interval]
    firsts = [
        f"arrayMin(arrayFilter(x -> x >= entry_ts, ts_{k})) AS f{k},\n        "
        f"toInt64(f{k}) - toInt64(arrayMax(arrayFilter(x -> x <= f{k}, ts_1))) AS t{k}"
        for k in range(2, n + 1)
    ]
    # The entry is the first step-1 time: the minimum of the step-1 list (one aggregate less).
    head = ["arrayMin(ts_1) AS entry_ts", f"{breakdown_out} AS breakdown", f"{level} AS level"]
    if period_sql:
        head.insert(0, f"{period_sql} AS period")
    counts = [f"countIf(level >= {k}) AS step_{k}" for k in range(1, n + 1)]
    medians = [f"medianExactIf(t{k}, level >= {k}) / 1000 AS median_s_{k}" for k in range(2, n + 1)]
    group = "period, breakdown" if period_sql else "breakdown"
    outer = ",\n    ".join((["period"] if period_sql else []) + ["breakdown", *counts, *medians])
    order = "period, step_1 DESC, breakdown" if period_sql else "step_1 DESC, breakdown"
    sep = ",\n        "
    if join_overrides:
        person = "multiIf(e.customer_id != '', e.customer_id, o.person_id != '', o.person_id, e.person_id)"
        join = """
    LEFT ASOF JOIN person_overrides_pending AS o
        ON e.device_id = o.device_id AND e.occurred_at >= o.valid_from"""
    else:
        # A row naming a customer is stored under that customer (the journey core's
        # `resolve_person`, and the fold leaves such rows alone), so with no override the
        # person is the stored one: grouped as it is stored, like plain windowFunnel.
        person, join = "e.person_id", ""
    return f"""WITH base AS (
    SELECT
        {person}
            AS person,
        toUInt64(toUnixTimestamp64Milli(e.occurred_at)) AS ts,
        e.breakdown_value AS breakdown_value,
        {carried}{touch_col}
    FROM
    (
        SELECT
            {inner}
        FROM events
        WHERE occurred_at >= {scan_from}
          AND occurred_at < {{date_to:DateTime64(3)}} + toIntervalMillisecond({{window_ms:UInt64}})
          AND ({" OR ".join(wanted)})
          AND NOT duplicate_transaction
    ) AS e{join}
),
per_person AS (
    SELECT
        person,
        {sep.join(aggregates)}
    FROM base
    GROUP BY person
),
step_times AS (
    SELECT
        {sep.join(head + firsts)}
    FROM per_person
    WHERE notEmpty(ts_1)
)
SELECT
    {outer}
FROM step_times
GROUP BY {group}
ORDER BY {order}"""
