-- Purchases deduplicated by transaction: events.duplicate_transaction.
--
-- true on a purchase whose properties.transaction_id the same person's purchases already
-- counted within the dedup horizon (a receipt re-sent under a new event_id, e.g. a POS
-- re-export). The row is kept; the core counted it in no session's revenue or conversion and
-- in no per-minute conversions or revenue, and the shipped funnel ignores it. Rows written
-- before this migration read false.
--
-- A column added to `events` does not show in a view created before it (a view's `e.*` is
-- expanded when the view is created), so events_resolved is recreated here with 0003's
-- definition unchanged: 0001-0003 are left untouched (applied migrations are checksummed).

ALTER TABLE events ADD COLUMN IF NOT EXISTS duplicate_transaction Bool DEFAULT false
    COMMENT 'purchase whose transaction_id this person already bought within the dedup horizon: not counted again';

DROP VIEW IF EXISTS events_resolved;

CREATE VIEW events_resolved AS
SELECT
    e.*,
    multiIf(
        e.customer_id != '', e.customer_id,
        current.link_customer != '', current.link_customer,
        first.first_customer != ''
            AND toUnixTimestamp64Milli(e.occurred_at)
                >= toUnixTimestamp64Milli(first.first_linked_at) - first.first_window_ms,
        first.first_customer,
        e.person_id
    ) AS resolved_person_id,
    if(m.merged_into != '', m.merged_into, e.session_id) AS resolved_session_id
FROM events AS e
LEFT ASOF JOIN
(
    SELECT device_id AS link_device, customer_id AS link_customer, linked_at FROM identity_links
) AS current
    ON e.device_id = current.link_device AND e.occurred_at >= current.linked_at
LEFT JOIN
(
    SELECT
        device_id AS first_device,
        argMin(customer_id, linked_at) AS first_customer,
        min(linked_at) AS first_linked_at,
        any(retro_window_ms) AS first_window_ms
    FROM identity_links
    GROUP BY device_id
) AS first ON e.device_id = first.first_device
LEFT JOIN
(
    SELECT session_id AS merged_session_id, any(merged_into) AS merged_into
    FROM session_merges GROUP BY session_id
) AS m ON e.session_id = m.merged_session_id;
