-- Parcours public tables, version 1.
--
-- Deduplication (why no query ever needs FINAL):
--  * Every row has a deterministic id (event_id, session_id, signal_id, ...): replaying the same
--    input produces the same ids.
--  * The sink inserts deterministic batches with `insert_deduplication_token` (a hash of the
--    batch's ids); `non_replicated_deduplication_window` makes plain MergeTree remember recent
--    tokens, so a retried or replayed batch is dropped at insert time.
--  * Tables are ReplacingMergeTree with the id last in ORDER BY, so any duplicate that slips past
--    the token (a replay cut into different batches) is collapsed by background merges, and
--  * the shipped queries count distinct ids (uniqExact / windowFunnel per person), which are
--    insensitive to a duplicate row that has not been merged yet.
--
-- Missing strings are stored as '' (not NULL): simpler joins and GROUP BYs for product teams.

CREATE TABLE IF NOT EXISTS events
(
    event_id       String,
    event_type     LowCardinality(String),
    occurred_at    DateTime64(3, 'UTC'),
    received_at    DateTime64(3, 'UTC'),
    channel        LowCardinality(String),
    device_id      String,
    device_type    LowCardinality(String),
    customer_id    String,
    person_id      String COMMENT 'person at processing time; see events_resolved for re-attribution',
    session_id     String,
    page           String,
    item_id        String,
    value          Nullable(Float64),
    currency       LowCardinality(String),
    properties     String COMMENT 'JSON object',
    late           Bool
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (person_id, occurred_at, event_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS sessions
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
    friction_count UInt32
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(started_at)
ORDER BY (person_id, started_at, session_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS friction
(
    signal_id      String,
    occurred_at    DateTime64(3, 'UTC'),
    type           LowCardinality(String),
    person_id      String,
    session_id     String,
    channel        LowCardinality(String),
    device_id      String,
    device_type    LowCardinality(String),
    details        String COMMENT 'JSON object'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (type, occurred_at, signal_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS identity_links
(
    device_id       String,
    customer_id     String,
    linked_at       DateTime64(3, 'UTC'),
    retro_window_ms Int64
)
ENGINE = ReplacingMergeTree
ORDER BY (device_id, linked_at, customer_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS session_merges
(
    session_id   String,
    merged_into  String,
    person_id    String,
    merged_at    DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (session_id, merged_into)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS minute_aggregates
(
    minute   DateTime('UTC'),
    shard    LowCardinality(String),
    channel  LowCardinality(String),
    metric   LowCardinality(String),
    key      LowCardinality(String),
    count    UInt64,
    amount   Float64,
    version  UInt32
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, shard, channel, metric, key)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS rejected_events
(
    rejection_id  String COMMENT 'hash of source, position and index: stable across replays',
    received_at   DateTime64(3, 'UTC'),
    topic         String,
    reason        LowCardinality(String),
    message       String,
    field         String,
    event_id      String,
    raw           String COMMENT 'the original message bytes',
    batch_index   Nullable(UInt32),
    source        String COMMENT 'file:<name> or kafka:<topic>/<partition>',
    position      UInt64 COMMENT 'line number or Kafka offset'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (source, position, rejection_id)
SETTINGS non_replicated_deduplication_window = 10000;
