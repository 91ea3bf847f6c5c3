SELECT
    channel,
    s.sessions_touching AS sessions_touching,
    s.converted_sessions_touching AS converted_sessions_touching,
    round(if(sessions_touching = 0, 0, converted_sessions_touching / sessions_touching), 4)
        AS conversion_rate_touching,
    p.purchases AS purchases,
    round(p.revenue, 2) AS revenue
FROM
(
    SELECT
        channel,
        count() AS sessions_touching,
        countIf(converted) AS converted_sessions_touching
    FROM
    (
        SELECT channels, converted
        FROM sessions FINAL
        WHERE {date_from:DateTime64(3)} <= started_at AND started_at < {date_to:DateTime64(3)}
    )
    ARRAY JOIN arrayDistinct(channels) AS channel
    GROUP BY channel
) AS s
FULL OUTER JOIN
(
    SELECT channel, uniqExact(event_id) AS purchases, sum(ifNull(value, 0)) AS revenue
    FROM
    (
        SELECT event_id, channel, value
        FROM events
        WHERE event_type = 'purchase' AND NOT duplicate_transaction AND {date_from:DateTime64(3)} <= occurred_at AND occurred_at < {date_to:DateTime64(3)}
        LIMIT 1 BY event_id
    )
    GROUP BY channel
) AS p USING (channel)
ORDER BY sessions_touching DESC, channel
