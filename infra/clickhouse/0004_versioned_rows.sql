-- Sessions and friction signals become versioned rows: a session can be shown while it is still
-- open and replaced when it closes or when a late event revises it, and a session or signal
-- that no longer holds (absorbed by another session, a bounce that a late event showed was not
-- one) is withdrawn.
--
-- Why a new table: ReplacingMergeTree's version and is_deleted columns are engine parameters,
-- which ALTER cannot add. The rows of 0001's table are copied (as version 1, closed, not
-- deleted) and the two tables are exchanged atomically.
--
-- Why ORDER BY session_id alone, and no time partition: rows replace each other only when they
-- share the sorting key *and* the partition. A session's start can move earlier while it is
-- open (an event up to the gap before it), and its person changes when an anonymous visit is
-- handed to the customer who logged in, so neither may be part of the key.
--
-- Reading: `sessions FINAL` and `friction FINAL` (or the views, which read them so) show the
-- newest version of each row and hide withdrawn ones; docs/storage.md has the example.
--   version     grows with each revision of a session (streams/core/session.py, session_version)
--   is_open     the session had not ended when the row was written (the input so far ends
--               within the inactivity gap of its last event); its final row replaces it
--   is_deleted  the session no longer exists (absorbed by another after a login)

CREATE TABLE IF NOT EXISTS sessions_v4
(
    session_id     String,
    person_id      String,
    started_at     DateTime64(3, 'UTC'),
    ended_at       DateTime64(3, 'UTC'),
    duration_s     Float64,
    events         UInt32,
    views          UInt32,
    channels       Array(LowCardinality(String)),
    devices        Array(String),
    landing_page   String,
    exit_page      String,
    engaged        Bool,
    bounced        Bool,
    converted      Bool,
    revenue        Float64,
    friction_count UInt32,
    is_open        Bool DEFAULT false,
    version        UInt64 DEFAULT 1,
    is_deleted     UInt8 DEFAULT 0
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY session_id
SETTINGS non_replicated_deduplication_window = 10000;

INSERT INTO sessions_v4
SELECT
    session_id, person_id, started_at, ended_at, duration_s, events, views, channels, devices,
    landing_page, exit_page, engaged, bounced, converted, revenue, friction_count,
    false AS is_open, 1 AS version, 0 AS is_deleted
FROM sessions;

EXCHANGE TABLES sessions AND sessions_v4;

DROP TABLE sessions_v4;

CREATE TABLE IF NOT EXISTS friction_v4
(
    signal_id      String,
    occurred_at    DateTime64(3, 'UTC'),
    type           LowCardinality(String),
    person_id      String,
    session_id     String,
    channel        LowCardinality(String),
    device_id      String,
    device_type    LowCardinality(String),
    details        String COMMENT 'JSON object',
    version        UInt64 DEFAULT 1,
    is_deleted     UInt8 DEFAULT 0
)
ENGINE = ReplacingMergeTree(version, is_deleted)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (type, occurred_at, signal_id)
SETTINGS non_replicated_deduplication_window = 10000;

INSERT INTO friction_v4
SELECT
    signal_id, occurred_at, type, person_id, session_id, channel, device_id, device_type, details,
    1 AS version, 0 AS is_deleted
FROM friction;

EXCHANGE TABLES friction AND friction_v4;

DROP TABLE friction_v4;

DROP VIEW IF EXISTS friction_resolved;

CREATE VIEW friction_resolved AS
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
    FROM friction FINAL
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
    FROM sessions FINAL
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

-- The embedded runner's journey state (streams/embedded/state.py): what one `parcours ingest`
-- hands to the next (people, devices, open sessions and checkout attempts, events waiting for
-- the watermark, dedup memory, per-minute totals not yet final, the watermark, and how far each
-- input file was read). One row per save; the newest `seq` is the state. Kept in the database
-- it describes, so the tables and the state that produced them go together (a copy, a backup,
-- a drop), and a run is never continued from another database's state. Streaming workers keep
-- theirs in Kafka changelogs instead.
CREATE TABLE IF NOT EXISTS journey_state
(
    name      LowCardinality(String),
    seq       UInt64,
    saved_at  DateTime64(3, 'UTC'),
    format    UInt16,
    state     String CODEC(ZSTD(1))
)
ENGINE = ReplacingMergeTree(seq)
ORDER BY name;
