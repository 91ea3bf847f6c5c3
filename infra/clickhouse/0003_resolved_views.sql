-- Events, sessions and friction resolved with one identity rule (replaces 0002's resolved views).
--
-- 0002's sessions_resolved gave every `anon:<device>` session to the device's first customer,
-- however old the session was. The rule (README, "People"; events_resolved) is:
--   * a row naming a customer (person_id not `anon:`) keeps its person;
--   * a row of `anon:<device>` at time t belongs to the customer of the device's latest link at
--     or before t;
--   * failing that, to the device's first customer if t is within the retro window
--     (identity_links.retro_window_ms, 30 days) before that first link;
--   * else it stays anonymous.
-- A session is placed in time by its start (started_at), a friction signal by its occurred_at.
-- Sessions and signals are resolved through the device named in their person id; their session
-- id through session_merges, like events.
--
-- events_resolved is recreated too: in 0002 the joined tables' `device_id` and `customer_id`
-- shadowed the event's, so the view exposed them as `e.device_id` and `e.customer_id`
-- (`SELECT device_id FROM events_resolved` failed). The joined columns are renamed here; the rule
-- is unchanged.
--
-- 0001 and 0002 are left untouched: applied migrations are checksummed.

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

DROP VIEW IF EXISTS sessions_resolved;

CREATE VIEW sessions_resolved AS
SELECT
    s.* EXCEPT anon_device,
    multiIf(
        s.anon_device = '', s.person_id,
        current.link_customer != '', current.link_customer,
        first.first_customer != ''
            AND toUnixTimestamp64Milli(s.started_at)
                >= toUnixTimestamp64Milli(first.first_linked_at) - first.first_window_ms,
        first.first_customer,
        s.person_id
    ) AS resolved_person_id
FROM
(
    SELECT *, if(startsWith(person_id, 'anon:'), substring(person_id, 6), '') AS anon_device
    FROM sessions
) AS s
LEFT ASOF JOIN
(
    SELECT device_id AS link_device, customer_id AS link_customer, linked_at FROM identity_links
) AS current
    ON s.anon_device = current.link_device AND s.started_at >= current.linked_at
LEFT JOIN
(
    SELECT
        device_id AS first_device,
        argMin(customer_id, linked_at) AS first_customer,
        min(linked_at) AS first_linked_at,
        any(retro_window_ms) AS first_window_ms
    FROM identity_links
    GROUP BY device_id
) AS first ON s.anon_device = first.first_device;

CREATE VIEW IF NOT EXISTS friction_resolved AS
SELECT
    f.* EXCEPT anon_device,
    multiIf(
        f.anon_device = '', f.person_id,
        current.link_customer != '', current.link_customer,
        first.first_customer != ''
            AND toUnixTimestamp64Milli(f.occurred_at)
                >= toUnixTimestamp64Milli(first.first_linked_at) - first.first_window_ms,
        first.first_customer,
        f.person_id
    ) AS resolved_person_id,
    if(m.merged_into != '', m.merged_into, f.session_id) AS resolved_session_id
FROM
(
    SELECT *, if(startsWith(person_id, 'anon:'), substring(person_id, 6), '') AS anon_device
    FROM friction
) AS f
LEFT ASOF JOIN
(
    SELECT device_id AS link_device, customer_id AS link_customer, linked_at FROM identity_links
) AS current
    ON f.anon_device = current.link_device AND f.occurred_at >= current.linked_at
LEFT JOIN
(
    SELECT
        device_id AS first_device,
        argMin(customer_id, linked_at) AS first_customer,
        min(linked_at) AS first_linked_at,
        any(retro_window_ms) AS first_window_ms
    FROM identity_links
    GROUP BY device_id
) AS first ON f.anon_device = first.first_device
LEFT JOIN
(
    SELECT session_id AS merged_session_id, any(merged_into) AS merged_into
    FROM session_merges GROUP BY session_id
) AS m ON f.session_id = m.merged_session_id;
