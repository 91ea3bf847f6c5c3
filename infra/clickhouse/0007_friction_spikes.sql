-- Friction spikes (issue 14): periods in which one friction type's rate on one channel was
-- abnormally high, decided in event time by streams/core/spikes.py from the per-minute
-- aggregates and written by both runners.
--
-- Versioned rows, as sessions and friction signals (docs/storage.md, "Versioned rows"): an open
-- spike is written again as it grows and when it closes, late data can revise it (a new
-- version) or withdraw it (is_deleted = 1; a spike whose start moves is a new spike, named after
-- its start, and the old one is withdrawn). Read it with FINAL.
--   observed, expected  rates: signals per thing they can happen to (payment failures per
--                       checkout attempt, bounces per session, ...), over [started_at, ended_at)
--   ratio               observed / expected;  score: the evidence, in nats (log-likelihood ratio)
--   status              open (the rate had not come back at the last minute judged) or closed
--   device_type         '' : every device type together
CREATE TABLE IF NOT EXISTS friction_spikes
(
    spike_id          String COMMENT 'hash of type, channel, device_type and started_at',
    type              LowCardinality(String),
    channel           LowCardinality(String),
    device_type       LowCardinality(String),
    started_at        DateTime64(3, 'UTC'),
    ended_at          DateTime64(3, 'UTC'),
    observed          Float64,
    expected          Float64,
    ratio             Float64,
    score             Float64,
    status            LowCardinality(String),
    signals           UInt64 COMMENT 'friction signals observed in the spike',
    expected_signals  Float64 COMMENT 'signals the baseline expected over the same period',
    denominator       UInt64 COMMENT 'things the signals could happen to, over the same period',
    version           UInt64,
    is_deleted        UInt8
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (type, channel, device_type, spike_id)
SETTINGS non_replicated_deduplication_window = 10000;
