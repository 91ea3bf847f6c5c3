-- Hostile input and faults (issue 12).
--
-- A rejected message is stored once: its original bytes go to `rejected_messages` (one row per
-- message, the bytes written as bytes, never re-encoded), and each rejection in
-- `rejected_events` refers to it by `message_id` (a 40 KB array of 20,000 bad elements is 40 KB
-- of bytes plus 20,000 short rows, not 800 MB). Rows written before this migration keep their
-- bytes in `rejected_events.raw`; the `rejections` view reads both.
ALTER TABLE rejected_events
    ADD COLUMN IF NOT EXISTS message_id String DEFAULT '' COMMENT 'the rejected_messages row holding the original bytes';

CREATE TABLE IF NOT EXISTS rejected_messages
(
    message_id   String COMMENT 'hash of source, position, topic and the bytes',
    received_at  DateTime64(3, 'UTC'),
    topic        String,
    source       String COMMENT 'file:<name> or kafka:<topic>/<partition>',
    position     UInt64 COMMENT 'line number or Kafka offset',
    raw          String COMMENT 'the original message bytes, exactly'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (source, position, message_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE VIEW IF NOT EXISTS rejections AS
SELECT
    e.rejection_id AS rejection_id,
    e.received_at AS received_at,
    e.topic AS topic,
    e.reason AS reason,
    e.message AS message,
    e.field AS field,
    e.event_id AS event_id,
    e.batch_index AS batch_index,
    e.source AS source,
    e.position AS position,
    e.message_id AS message_id,
    if(e.message_id = '', e.raw, m.raw) AS raw
FROM rejected_events AS e
LEFT JOIN (SELECT DISTINCT message_id, raw FROM rejected_messages) AS m ON e.message_id = m.message_id;

-- Rows ClickHouse refused (a permanent error): kept here with the error instead of being
-- retried forever or dropped. `row` is the row as JSON, `row_id` the sink's id for it.
CREATE TABLE IF NOT EXISTS quarantined_rows
(
    quarantined_at  DateTime64(3, 'UTC') DEFAULT now64(3),
    target_table    LowCardinality(String),
    row_id          String,
    error           String,
    row             String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(quarantined_at)
ORDER BY (target_table, quarantined_at, row_id);
