SELECT scope, from_channel, to_channel, count() AS transitions
FROM
(
    SELECT 'within session' AS scope, pair.1 AS from_channel, pair.2 AS to_channel
    FROM
    (
        SELECT arrayMap(x -> x.3, arraySort(groupArray((occurred_at, event_id, channel)))) AS chans
        FROM (SELECT * FROM events_resolved WHERE occurred_at >= {date_from:DateTime64(3)} AND occurred_at < {date_to:DateTime64(3)} AND resolved_session_id != ''
              LIMIT 1 BY event_id)
        GROUP BY resolved_session_id
    )
    ARRAY JOIN arrayZip(arrayPopBack(chans), arrayPopFront(chans)) AS pair
    WHERE pair.1 != pair.2
    UNION ALL
    SELECT 'across sessions' AS scope, pair.1 AS from_channel, pair.2 AS to_channel
    FROM
    (
        SELECT arrayMap(x -> x.3, arraySort(groupArray((started_at, session_id, channel)))) AS chans
        FROM
        (
            SELECT resolved_person_id, started_at, session_id, channels[1] AS channel
            FROM sessions_resolved FINAL
            WHERE started_at >= {date_from:DateTime64(3)} AND started_at < {date_to:DateTime64(3)}
            LIMIT 1 BY session_id
        )
        GROUP BY resolved_person_id
    )
    ARRAY JOIN arrayZip(arrayPopBack(chans), arrayPopFront(chans)) AS pair
)
GROUP BY scope, from_channel, to_channel
ORDER BY scope DESC, transitions DESC, from_channel, to_channel
