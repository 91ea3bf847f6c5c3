WITH cohorts AS (
    SELECT
        person,
        first_purchase AS joined,
        toStartOfMonth(joined) AS cohort,
        count() OVER (PARTITION BY cohort) AS cohort_persons,
        acquisition_channel,
        purchases,
        last_seen,
        acts
    FROM
    (
        SELECT
            person,
            min(occurred_at) AS first_visit,
            minIf(occurred_at, is_purchase) AS first_purchase,
            countIf(is_purchase) AS purchases,
            argMin(channel, occurred_at) AS acquisition_channel,
            max(occurred_at) AS last_seen,
            groupArray((occurred_at, is_purchase, value)) AS acts
        FROM
        (
            SELECT
                multiIf(e.customer_id != '', e.customer_id, o.person_id != '', o.person_id,
                        e.person_id) AS person,
                e.occurred_at AS occurred_at,
                e.channel AS channel,
                e.event_type = 'purchase' AS is_purchase,
                ifNull(e.value, 0) AS value
            FROM
            (
                SELECT event_id, customer_id, person_id, device_id, occurred_at, channel,
                       event_type, value
                FROM events
                WHERE occurred_at < {date_to:DateTime64(3)} AND NOT duplicate_transaction
                LIMIT 1 BY event_id
            ) AS e
            LEFT ASOF JOIN person_overrides AS o
                ON e.device_id = o.device_id AND e.occurred_at >= o.valid_from
        )
        GROUP BY person
    )
    WHERE joined >= {date_from:DateTime64(3)} AND joined < {date_to:DateTime64(3)}
      AND (purchases > 0 OR {cohort_is_visit:Bool})
)
SELECT
    cohort,
    acquisition_channel,
    count() AS persons,
    countIf(purchases > 0) AS buyers,
    countIf(purchases >= 2) AS repeat_buyers,
    round(if(buyers = 0, 0, repeat_buyers / buyers), 4) AS repeat_purchase_rate,
    round(sum(arraySum(arrayMap(a -> if(a.2 AND a.1 >= joined AND a.1 < joined + toIntervalDay(30), a.3, 0), acts))) / persons, 2) AS ltv_30d,
    round(sum(arraySum(arrayMap(a -> if(a.2 AND a.1 >= joined AND a.1 < joined + toIntervalDay(90), a.3, 0), acts))) / persons, 2) AS ltv_90d,
    round(sum(arraySum(arrayMap(a -> if(a.2 AND a.1 >= joined AND a.1 < joined + toIntervalDay(365), a.3, 0), acts))) / persons, 2) AS ltv_365d,
    countIf(last_seen < {date_to:DateTime64(3)} - toIntervalDay({churn_days:UInt32})) AS churned
FROM cohorts
GROUP BY cohort, acquisition_channel
ORDER BY cohort, persons DESC, acquisition_channel
