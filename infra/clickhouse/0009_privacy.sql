-- Privacy (issue 16): erasure, suppression, retention.
--
-- `privacy_erasures` is the audit of `parcours forget`: who was erased is kept only as a keyed
-- hash (BLAKE2b with the privacy key, never stored here), with the time and how many rows went.
-- `privacy_suppressions` is the suppression list: the keyed hashes of erased customers and
-- devices. Every run reads it, and an event naming one of them is dropped at decode, so a
-- replay of old input cannot bring an erased person back. Neither table has a TTL: the
-- suppression must outlive every copy of the input.
CREATE TABLE IF NOT EXISTS privacy_erasures
(
    erased_at     DateTime64(3, 'UTC'),
    kind          LowCardinality(String) COMMENT 'customer or device',
    subject_hash  String COMMENT 'keyed hash of the id (streams/privacy/keys.py)',
    rows_removed  UInt64
)
ENGINE = MergeTree
ORDER BY (erased_at, subject_hash);

CREATE TABLE IF NOT EXISTS privacy_suppressions
(
    subject_hash  String COMMENT 'keyed hash of an erased customer or device',
    kind          LowCardinality(String),
    added_at      DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY subject_hash;

-- Retention is not set here: each run that opens the database (`parcours ingest`) makes every
-- table's TTL what PARCOURS_RETENTION_* says (streams/privacy/retention.py; defaults: personal
-- rows 396 days, rejected inputs and quarantined rows 30). Not in a migration because a TTL
-- also removes rows already expired when inserted: a fixed migration would empty every
-- database of fixed-date test or demo data once it is 13 months old. By hand, on a
-- server, the defaults are:
--   ALTER TABLE events MODIFY TTL toDateTime(occurred_at) + INTERVAL 396 DAY;
--   ALTER TABLE sessions MODIFY TTL toDateTime(ended_at) + INTERVAL 396 DAY;
--   ALTER TABLE friction MODIFY TTL toDateTime(occurred_at) + INTERVAL 396 DAY;
--   ALTER TABLE identity_links MODIFY TTL toDateTime(linked_at) + INTERVAL 396 DAY;
--   ALTER TABLE session_merges MODIFY TTL toDateTime(merged_at) + INTERVAL 396 DAY;
--   ALTER TABLE rejected_events MODIFY TTL toDateTime(received_at) + INTERVAL 30 DAY;
--   ALTER TABLE rejected_messages MODIFY TTL toDateTime(received_at) + INTERVAL 30 DAY;
--   ALTER TABLE quarantined_rows MODIFY TTL toDateTime(quarantined_at) + INTERVAL 30 DAY;
