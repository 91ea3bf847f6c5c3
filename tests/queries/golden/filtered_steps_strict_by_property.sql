WITH base AS (
    SELECT
        resolved_person_id AS person,
        toUInt64(toUnixTimestamp64Milli(occurred_at)) AS ts,
        JSONExtractString(properties, {breakdown_property:String}) AS breakdown_value,
        (event_type = {s1_type:String} AND channel = {s1_v0:String} AND occurred_at >= {date_from:DateTime64(3)} AND occurred_at < {date_to:DateTime64(3)}) AS s1,
        (event_type = {s2_type:String} AND channel = {s2_v0:String} AND JSONExtractString(properties, {s2_p1:String}) = {s2_v1:String}) AS s2
    FROM events_resolved
    WHERE occurred_at >= {date_from:DateTime64(3)}
      AND occurred_at < {date_to:DateTime64(3)} + toIntervalMillisecond({window_ms:UInt64})
      AND (s1 OR s2)
      AND NOT duplicate_transaction
),
per_person AS (
    SELECT
        person,
        windowFunnel({window_ms:UInt64}, 'strict_order')(ts, s1, s2) AS level,
        argMinIf(breakdown_value, ts, s1) AS breakdown,
        minIf(ts, s1) AS entry_ts
    FROM base
    GROUP BY person
    HAVING countIf(s1) > 0
),
step_firsts AS (
    SELECT
        b.person AS person,
        minIf(b.ts, b.s2 AND b.ts >= p.entry_ts) AS f2
    FROM base AS b
    INNER JOIN per_person AS p ON b.person = p.person
    GROUP BY b.person, p.entry_ts
),
step_times AS (
    SELECT
        b.person AS person,
        f.f2 - maxIf(b.ts, b.s1 AND b.ts <= f.f2) AS t2
    FROM base AS b
    INNER JOIN step_firsts AS f ON b.person = f.person
    GROUP BY b.person, f.f2
)
SELECT
    p.breakdown AS breakdown,
    countIf(p.level >= 1) AS step_1,
    countIf(p.level >= 2) AS step_2,
    medianExactIf(t.t2, p.level >= 2) / 1000 AS median_s_2
FROM per_person AS p
LEFT JOIN step_times AS t ON p.person = t.person
GROUP BY p.breakdown
ORDER BY step_1 DESC, breakdown
