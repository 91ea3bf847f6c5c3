WITH cohorts AS (
    SELECT
        person,
        first_visit AS joined,
        toMonday(joined) AS cohort,
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
    period,
    any(cohort_persons) AS cohort_persons,
    count() AS active_persons,
    round(active_persons / cohort_persons, 4) AS retention_rate
FROM
(
    SELECT
        cohort,
        cohort_persons,
        arrayJoin(arrayDistinct(arrayMap(
            a -> dateDiff('week', cohort, toMonday(a.1)),
            arrayFilter(a -> a.1 >= joined, acts)
        ))) AS period
    FROM cohorts
)
GROUP BY cohort, period
ORDER BY cohort, period
