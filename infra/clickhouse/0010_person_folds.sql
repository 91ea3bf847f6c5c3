-- Persons folded into the rows (issue 13 §1): queries join only the overrides not yet folded.
--
-- Every event row carries its person as the journey core knew it when it processed the row
-- (`person_id`). The core resolves a device's customer-less events by the same rule as the
-- views (0003, `streams.core.identity.person_of_device`), so a row written after its device's
-- links disagrees with `person_overrides` (0008) only when a link arrived later: a login that
-- re-attributes the device's earlier anonymous events (the retro window), or a late link older
-- than the device's first. The compaction step (`parcours compact`, and the end of every
-- `parcours ingest`; `streams/clickhouse/person_fold.py`) rewrites those rows with the person
-- the overrides give them (a new row under the new person, the old one deleted: `person_id`
-- is in the sort key), then records here, per table and partition, the highest block number
-- it has folded. A part whose highest block is at most that number holds only folded rows (a
-- merge of folded parts keeps its blocks; a mutation keeps them too); a part with a higher
-- block was written since (or merged with something written since).
--
-- `person_overrides_pending` is then `person_overrides` restricted to the devices that may
-- have a row whose stored person is not the resolved one: a device with a link in a part
-- written since the last fold (its earlier rows may need the new link), or with a
-- customer-less event in such a part (written before we knew, or under a rule we do not want
-- to assume). Every other device's rows already carry their resolved person, so the funnel's
-- one ASOF join reads an empty or small table. Before any fold (a server fed by the streaming
-- workers), every part is unfolded and the view is all of `person_overrides`: the answers are
-- the same, only the cost differs.
--
-- Block numbers rise within a partition on MergeTree and ReplicatedMergeTree alike, which is
-- why the watermark is kept per partition. The part name is `<partition>_<min>_<max>_<level>`
-- (plus `_<mutation>`); `_partition_id` is stripped first, so the second field is `<max>`.

CREATE TABLE IF NOT EXISTS person_folds
(
    folded_at     DateTime64(3, 'UTC'),
    table_name    LowCardinality(String),
    partition_id  String,
    max_block     UInt64
)
ENGINE = ReplacingMergeTree(folded_at)
ORDER BY (table_name, partition_id);

-- The rows one fold rewrites (emptied at the start and at the end of each fold: it names
-- persons, and must not outlive the fold for erasures' sake): event id, stored person,
-- resolved person.
CREATE TABLE IF NOT EXISTS person_fold_work
(
    event_id    String,
    old_person  String,
    new_person  String
)
ENGINE = MergeTree
ORDER BY (event_id, old_person);

CREATE VIEW IF NOT EXISTS person_overrides_pending AS
SELECT device_id, valid_from, person_id
FROM person_overrides
WHERE device_id IN
(
    SELECT device_id
    FROM identity_links
    WHERE toUInt64(splitByChar('_', substring(_part, length(_partition_id) + 2))[2]) > (
        SELECT CAST((groupArray(partition_id), groupArray(max_block)), 'Map(String, UInt64)')
        FROM person_folds FINAL WHERE table_name = 'identity_links'
    )[_partition_id]
    UNION ALL
    SELECT device_id
    FROM events
    WHERE toUInt64(splitByChar('_', substring(_part, length(_partition_id) + 2))[2]) > (
        SELECT CAST((groupArray(partition_id), groupArray(max_block)), 'Map(String, UInt64)')
        FROM person_folds FINAL WHERE table_name = 'events'
    )[_partition_id]
      AND customer_id = '' AND device_id != ''
);
