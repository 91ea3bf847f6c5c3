WITH base AS (
    SELECT
        multiIf(e.customer_id != '', e.customer_id, o.person_id != '', o.person_id, e.person_id)
            AS person,
        toUInt64(toUnixTimestamp64Milli(e.occurred_at)) AS ts,
        e.breakdown_value AS breakdown_value,
        e.s1 AS s1, e.s2 AS s2, e.s3 AS s3, e.s4 AS s4
    FROM
    (
        SELECT
            device_id,
            customer_id,
            person_id,
            occurred_at,
            channel AS breakdown_value,
            (event_type = {s1_type:String} AND occurred_at >= {date_from:DateTime64(3)} AND occurred_at < {date_to:DateTime64(3)}) AS s1,
            (event_type = {s2_type:String}) AS s2,
            (event_type = {s3_type:String}) AS s3,
            (event_type = {s4_type:String}) AS s4
        FROM events
        WHERE occurred_at >= {date_from:DateTime64(3)}
          AND occurred_at < {date_to:DateTime64(3)} + toIntervalMillisecond({window_ms:UInt64})
          AND (s1 OR s2 OR s3 OR s4)
          AND NOT duplicate_transaction
    ) AS e
    LEFT ASOF JOIN person_overrides_pending AS o
        ON e.device_id = o.device_id AND e.occurred_at >= o.valid_from
),
per_person AS (
    SELECT
        person,
        windowFunnel({window_ms:UInt64})(ts, s1, s2, s3, s4) AS raw_level,
        argMinIf(breakdown_value, ts, s1) AS first_breakdown,
        groupArrayIf(ts, s1) AS ts_1,
        groupArrayIf(ts, s2) AS ts_2,
        groupArrayIf(ts, s3) AS ts_3,
        groupArrayIf(ts, s4) AS ts_4
    FROM base
    GROUP BY person
),
step_times AS (
    SELECT
        arrayMin(ts_1) AS entry_ts,
        first_breakdown AS breakdown,
        raw_level AS level,
        arrayMin(arrayFilter(x -> x >= entry_ts, ts_2)) AS f2,
        toInt64(f2) - toInt64(arrayMax(arrayFilter(x -> x <= f2, ts_1))) AS t2,
        arrayMin(arrayFilter(x -> x >= entry_ts, ts_3)) AS f3,
        toInt64(f3) - toInt64(arrayMax(arrayFilter(x -> x <= f3, ts_1))) AS t3,
        arrayMin(arrayFilter(x -> x >= entry_ts, ts_4)) AS f4,
        toInt64(f4) - toInt64(arrayMax(arrayFilter(x -> x <= f4, ts_1))) AS t4
    FROM per_person
    WHERE notEmpty(ts_1)
)
SELECT
    breakdown,
    countIf(level >= 1) AS step_1,
    countIf(level >= 2) AS step_2,
    countIf(level >= 3) AS step_3,
    countIf(level >= 4) AS step_4,
    medianExactIf(t2, level >= 2) / 1000 AS median_s_2,
    medianExactIf(t3, level >= 3) / 1000 AS median_s_3,
    medianExactIf(t4, level >= 4) / 1000 AS median_s_4
FROM step_times
GROUP BY breakdown
ORDER BY step_1 DESC, breakdown
