-- Query-time identity resolution and per-minute totals.
--
-- events_resolved: every event with the person it belongs to *now* that all identity links are
-- known. An event naming a customer belongs to that customer. A device-only event at time t
-- belongs to the customer of the device's latest link at or before t; failing that, to the
-- device's first customer if t is within the retro window before that first link; else it stays
-- anonymous. Its session is resolved through session_merges (an anonymous session that joined
-- a customer's session on login).

CREATE VIEW IF NOT EXISTS events_resolved AS
SELECT
    e.*,
    multiIf(
        e.customer_id != '', e.customer_id,
        current.customer_id != '', current.customer_id,
        first.first_customer != ''
            AND toUnixTimestamp64Milli(e.occurred_at)
                >= toUnixTimestamp64Milli(first.first_linked_at) - first.first_window_ms,
        first.first_customer,
        e.person_id
    ) AS resolved_person_id,
    if(m.merged_into != '', m.merged_into, e.session_id) AS resolved_session_id
FROM events AS e
LEFT ASOF JOIN identity_links AS current
    ON e.device_id = current.device_id AND e.occurred_at >= current.linked_at
LEFT JOIN
(
    SELECT
        device_id,
        argMin(customer_id, linked_at) AS first_customer,
        min(linked_at) AS first_linked_at,
        any(retro_window_ms) AS first_window_ms
    FROM identity_links
    GROUP BY device_id
) AS first ON e.device_id = first.device_id
LEFT JOIN
(
    SELECT session_id AS merged_session_id, any(merged_into) AS merged_into
    FROM session_merges GROUP BY session_id
) AS m ON e.session_id = m.merged_session_id;

-- sessions_resolved: sessions with the person resolved through their devices' links.
CREATE VIEW IF NOT EXISTS sessions_resolved AS
SELECT
    s.*,
    if(startsWith(s.person_id, 'anon:') AND l.first_customer != '', l.first_customer, s.person_id)
        AS resolved_person_id
FROM sessions AS s
LEFT JOIN
(
    SELECT device_id AS linked_device, argMin(customer_id, linked_at) AS first_customer
    FROM identity_links GROUP BY device_id
) AS l ON substring(s.person_id, 6) = l.linked_device;

-- events_per_minute: newest version of each shard's row, summed over shards.
CREATE VIEW IF NOT EXISTS events_per_minute AS
SELECT minute, channel, metric, key, sum(latest_count) AS count, sum(latest_amount) AS amount
FROM
(
    SELECT minute, shard, channel, metric, key,
           argMax(count, version) AS latest_count, argMax(amount, version) AS latest_amount
    FROM minute_aggregates
    GROUP BY minute, shard, channel, metric, key
)
GROUP BY minute, channel, metric, key;
