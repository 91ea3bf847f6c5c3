SELECT
    contact.2 AS medium,
    count() AS contacts,
    countIf(arrayExists(
        c -> c.1 > contact.1 AND c.1 <= contact.1 + {repeat_ms:UInt64}, person_contacts)) AS repeated,
    round(repeated / contacts, 4) AS repeat_contact_rate,
    round(1 - repeat_contact_rate, 4) AS first_contact_resolution_rate
FROM
(
    SELECT resolved_person_id AS person, arraySort(groupArray((ts, medium))) AS person_contacts
    FROM
    (
        SELECT
            resolved_person_id,
            toUInt64(toUnixTimestamp64Milli(occurred_at)) AS ts,
            JSONExtractString(properties, 'medium') AS medium
        FROM events_resolved
        WHERE event_type = 'support_contact'
          AND occurred_at >= {date_from:DateTime64(3)}
          AND occurred_at < {date_to:DateTime64(3)} + toIntervalMillisecond({repeat_ms:UInt64})
        LIMIT 1 BY event_id
    )
    GROUP BY resolved_person_id
)
ARRAY JOIN person_contacts AS contact
WHERE contact.1 < toUInt64(toUnixTimestamp64Milli({date_to:DateTime64(3)}))
  AND contact.1 >= toUInt64(toUnixTimestamp64Milli({date_from:DateTime64(3)}))
GROUP BY medium
ORDER BY contacts DESC, medium
