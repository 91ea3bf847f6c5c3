-- Persons resolved with one small join: `person_overrides` (issue 13).
--
-- Every stored row already carries its person as Parcours knew it when it processed the row
-- (`person_id`: the customer, `anon:<device>`, a guest). What a later login changes is the
-- person of a device's customer-less rows, and only by the identity rule (0003): a row of the
-- device at time t belongs to the customer of its latest link at or before t, failing that to
-- its first customer if t is within the retro window before that first link, else it stays
-- anonymous. That rule is a step function of t per device, which this view lists as overrides:
-- one row per link (from its `linked_at` on: that link's customer), plus one row per device at
-- `first link − retro window` (the first customer). The override of a row at t is then the
-- latest override row of its device at or before t: one ASOF join, which reads
-- `identity_links` (one row per login, small next to `events`) once per query instead of once
-- per step and per resolved view, and needs no `session_merges` (funnels ask for persons, not
-- sessions).
--
-- Unlike PostHog's person_overrides (written when two persons merge, later squashed into the
-- events), these overrides are derived deterministically from the journey core's links, so a
-- view is always exact: no override can be missing or stale, and a late link (one older than
-- the device's first) moves the retro row with it. The retro window is the first link's own
-- (0003's views take `any` of the device's links: the same as long as the setting did not
-- change between two logins of one device).

CREATE VIEW IF NOT EXISTS person_overrides AS
SELECT device_id, linked_at AS valid_from, customer_id AS person_id
FROM identity_links
UNION ALL
SELECT
    device_id,
    subtractMilliseconds(min(linked_at), argMin(retro_window_ms, linked_at)) AS valid_from,
    argMin(customer_id, linked_at) AS person_id
FROM identity_links
GROUP BY device_id;
