SELECT
    channel,
    touchpoint,
    count() AS visits,
    uniqExact(person) AS persons,
    round(countIf(bounced) / visits, 4) AS bounce_rate,
    round(countIf(converted) / visits, 4) AS conversion_rate,
    round(arrayReduce('median', arrayFlatten(groupArray(spent))), 1) AS median_seconds,
    round(100 * sum(friction) / visits, 2) AS friction_per_100_sessions
FROM
(
    SELECT
        t.channel AS channel,
        t.touchpoint AS touchpoint,
        t.session AS session,
        any(t.person) AS person,
        groupArrayIf(t.spent_s, t.spent_s >= 0) AS spent,
        any(s.bounced) AS bounced,
        any(s.converted) AS converted,
        any(s.friction_count) AS friction
    FROM
    (
        SELECT
            session,
            person,
            channel,
            touchpoint,
            if(next_at >= occurred_at, dateDiff('millisecond', occurred_at, next_at) / 1000, -1)
                AS spent_s
        FROM
        (
            SELECT
                resolved_session_id AS session,
                resolved_person_id AS person,
                channel,
                multiIf(
                event_type IN ('page_view', 'screen_view'), page,
                event_type = 'store_visit',
                    concat('store ', JSONExtractString(properties, 'store_id')),
                event_type = 'support_contact',
                    concat('support ', JSONExtractString(properties, 'medium')),
                '') AS touchpoint,
                occurred_at,
                leadInFrame(occurred_at) OVER (
                    PARTITION BY resolved_session_id ORDER BY occurred_at, event_id
                    ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING
                ) AS next_at
            FROM
            (
                SELECT * FROM events_resolved
                WHERE occurred_at >= {date_from:DateTime64(3)} AND occurred_at < {date_to:DateTime64(3)} AND resolved_session_id != ''
                LIMIT 1 BY event_id
            )
        )
        WHERE touchpoint != ''
    ) AS t
    INNER JOIN
    (
        SELECT session_id, bounced, converted, friction_count FROM sessions FINAL
    ) AS s ON t.session = s.session_id
    GROUP BY channel, touchpoint, session
)
GROUP BY channel, touchpoint
HAVING visits >= {min_visits:UInt32}
ORDER BY visits DESC, channel, touchpoint
LIMIT {limit:UInt32}
