WITH base AS (
    SELECT
        multiIf(e.customer_id != '', e.customer_id, o.person_id != '', o.person_id, e.person_id)
            AS person,
        toUInt64(toUnixTimestamp64Milli(e.occurred_at)) AS ts,
        e.breakdown_value AS breakdown_value,
        (e.s1 AND e.occurred_at >= {date_from:DateTime64(3)}) AS s1, (e.s2 AND e.occurred_at >= {date_from:DateTime64(3)}) AS s2, (e.x1 AND e.occurred_at >= {date_from:DateTime64(3)}) AS x1,
        e.touch AS touch
    FROM
    (
        SELECT
            device_id,
            customer_id,
            person_id,
            occurred_at,
            '' AS breakdown_value,
            JSONExtractString(properties, {touch_key:String}) AS touch,
            (event_type = {s1_type:String} AND has({s1_0_v:Array(String)}, channel) AND occurred_at >= {date_from:DateTime64(3)} AND occurred_at < {date_to:DateTime64(3)}) AS s1,
            (event_type = {s2_type:String} AND ifNull(value >= {s2_0_v:Float64}, false)) AS s2,
            (event_type = {x1_type:String}) AS x1
        FROM events
        WHERE occurred_at >= {date_from:DateTime64(3)} - toIntervalDay({lookback_days:UInt32})
          AND occurred_at < {date_to:DateTime64(3)} + toIntervalMillisecond({window_ms:UInt64})
          AND (s1 OR s2 OR x1 OR touch != '')
          AND NOT duplicate_transaction
    ) AS e
    LEFT ASOF JOIN person_overrides_pending AS o
        ON e.device_id = o.device_id AND e.occurred_at >= o.valid_from
),
per_person AS (
    SELECT
        person,
        windowFunnelIf({window_ms:UInt64})(ts, s1, s2, s1 OR s2) AS raw_level,
        argMinIf(breakdown_value, ts, s1) AS first_breakdown,
        groupArrayIf(ts, s1) AS ts_1,
        groupArrayIf(ts, s2) AS ts_2,
        windowFunnel({window_ms:UInt64})(ts, s1, x1, s2) AS excluded_1,
        groupArrayIf((ts, touch), touch != '') AS touches
    FROM base
    GROUP BY person
),
step_times AS (
    SELECT
        toMonday(fromUnixTimestamp64Milli(toInt64(entry_ts), 'UTC')) AS period,
        arrayMin(ts_1) AS entry_ts,
        if(empty(arrayFilter(t -> t.1 <= entry_ts, touches)), '(none)', arraySort(arrayFilter(t -> t.1 <= entry_ts, touches))[-1].2) AS breakdown,
        least(raw_level, if(excluded_1 >= 3, 1, 2)) AS level,
        arrayMin(arrayFilter(x -> x >= entry_ts, ts_2)) AS f2,
        toInt64(f2) - toInt64(arrayMax(arrayFilter(x -> x <= f2, ts_1))) AS t2
    FROM per_person
    WHERE notEmpty(ts_1)
)
SELECT
    period,
    breakdown,
    countIf(level >= 1) AS step_1,
    countIf(level >= 2) AS step_2,
    medianExactIf(t2, level >= 2) / 1000 AS median_s_2
FROM step_times
GROUP BY period, breakdown
ORDER BY period, step_1 DESC, breakdown
