SELECT path, count() AS sessions
FROM
(
    SELECT arraySlice(steps, indexOf(steps, {anchor:String}), {depth:UInt32}) AS path
    FROM
    (
        SELECT
            session,
            arrayFilter(
                (label, i) -> i = 1 OR label != labels[i - 1],
                labels,
                arrayEnumerate(labels)
            ) AS steps
        FROM
        (
            SELECT
                resolved_session_id AS session,
                arrayMap(x -> x.3, arraySort(groupArray((occurred_at, event_id, label)))) AS labels
            FROM
            (
                SELECT resolved_session_id, occurred_at, event_id, multiIf(
            event_type IN ('page_view', 'screen_view'), concat(channel, ' ', page),
            event_type = 'store_visit', concat('store ', JSONExtractString(properties, 'store_id')),
            event_type = 'support_contact',
                concat('support ', JSONExtractString(properties, 'medium')),
            event_type = 'purchase' AND NOT duplicate_transaction, concat(channel, ' purchase'),
            '') AS label
                FROM events_resolved
                WHERE occurred_at >= {date_from:DateTime64(3)} AND occurred_at < {date_to:DateTime64(3)} AND resolved_session_id != ''
                LIMIT 1 BY event_id
            )
            WHERE label != ''
            GROUP BY resolved_session_id
        )
    )
    WHERE has(steps, {anchor:String})
)
GROUP BY path
ORDER BY sessions DESC, path
