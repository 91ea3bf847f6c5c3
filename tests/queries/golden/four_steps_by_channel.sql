WITH base AS (
    SELECT
        resolved_person_id AS person,
        toUInt64(toUnixTimestamp64Milli(occurred_at)) AS ts,
        channel AS breakdown_value,
        (event_type = {s1_type:String} AND occurred_at >= {date_from:DateTime64(3)} AND occurred_at < {date_to:DateTime64(3)}) AS s1,
        (event_type = {s2_type:String}) AS s2,
        (event_type = {s3_type:String}) AS s3,
        (event_type = {s4_type:String}) AS s4
    FROM events_resolved
    WHERE occurred_at >= {date_from:DateTime64(3)}
      AND occurred_at < {date_to:DateTime64(3)} + toIntervalMillisecond({window_ms:UInt64})
      AND (s1 OR s2 OR s3 OR s4)
      AND NOT duplicate_transaction
),
per_person AS (
    SELECT
        person,
        windowFunnel({window_ms:UInt64})(ts, s1, s2, s3, s4) AS level,
        argMinIf(breakdown_value, ts, s1) AS breakdown,
        minIf(ts, s1) AS entry_ts
    FROM base
    GROUP BY person
    HAVING countIf(s1) > 0
),
step_firsts AS (
    SELECT
        b.person AS person,
        minIf(b.ts, b.s2 AND b.ts >= p.entry_ts) AS f2,
        minIf(b.ts, b.s3 AND b.ts >= p.entry_ts) AS f3,
        minIf(b.ts, b.s4 AND b.ts >= p.entry_ts) AS f4
    FROM base AS b
    INNER JOIN per_person AS p ON b.person = p.person
    GROUP BY b.person, p.entry_ts
),
step_times AS (
    SELECT
        b.person AS person,
        f.f2 - maxIf(b.ts, b.s1 AND b.ts <= f.f2) AS t2,
        f.f3 - maxIf(b.ts, b.s1 AND b.ts <= f.f3) AS t3,
        f.f4 - maxIf(b.ts, b.s1 AND b.ts <= f.f4) AS t4
    FROM base AS b
    INNER JOIN step_firsts AS f ON b.person = f.person
    GROUP BY b.person, f.f2, f.f3, f.f4
)
SELECT
    p.breakdown AS breakdown,
    countIf(p.level >= 1) AS step_1,
    countIf(p.level >= 2) AS step_2,
    countIf(p.level >= 3) AS step_3,
    countIf(p.level >= 4) AS step_4,
    medianExactIf(t.t2, p.level >= 2) / 1000 AS median_s_2,
    medianExactIf(t.t3, p.level >= 3) / 1000 AS median_s_3,
    medianExactIf(t.t4, p.level >= 4) / 1000 AS median_s_4
FROM per_person AS p
LEFT JOIN step_times AS t ON p.person = t.person
GROUP BY p.breakdown
ORDER BY step_1 DESC, breakdown
