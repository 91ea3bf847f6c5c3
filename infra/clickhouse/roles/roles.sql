-- Roles on a ClickHouse server (issue 12: analysts read, only the pipeline writes).
--
-- Applied by `parcours migrate --roles` with an administrator's DSN (or by hand, with
-- `{database}` replaced). Not a numbered migration: embedded chDB has no access control, so
-- roles do not apply there (the same tables and views run on chDB; `parcours sql` is read-only
-- there through ClickHouse's `readonly` setting and refuses file-system table functions).
--
-- parcours_writer: the sink stage. Inserts into the pipeline tables, reads the migration
-- history (to check it is up to date); no DDL, no DELETE, no file or network table functions.
-- parcours_analyst: the query commands and dashboards. SELECT on the documented tables and
-- views only. Migrations are run by an administrator (`parcours migrate`).
CREATE ROLE IF NOT EXISTS parcours_writer;
CREATE ROLE IF NOT EXISTS parcours_analyst;

GRANT INSERT ON {database}.events TO parcours_writer;
GRANT INSERT ON {database}.sessions TO parcours_writer;
GRANT INSERT ON {database}.friction TO parcours_writer;
GRANT INSERT ON {database}.identity_links TO parcours_writer;
GRANT INSERT ON {database}.session_merges TO parcours_writer;
GRANT INSERT ON {database}.minute_aggregates TO parcours_writer;
GRANT INSERT ON {database}.rejected_events TO parcours_writer;
GRANT INSERT ON {database}.rejected_messages TO parcours_writer;
GRANT INSERT ON {database}.quarantined_rows TO parcours_writer;
GRANT INSERT ON {database}.friction_spikes TO parcours_writer;
GRANT INSERT ON {database}.journey_state TO parcours_writer;
GRANT SELECT ON {database}.journey_state TO parcours_writer;
GRANT SELECT ON {database}.schema_migrations TO parcours_writer;

GRANT SELECT ON {database}.events TO parcours_analyst;
GRANT SELECT ON {database}.sessions TO parcours_analyst;
GRANT SELECT ON {database}.friction TO parcours_analyst;
GRANT SELECT ON {database}.identity_links TO parcours_analyst;
GRANT SELECT ON {database}.session_merges TO parcours_analyst;
GRANT SELECT ON {database}.minute_aggregates TO parcours_analyst;
GRANT SELECT ON {database}.rejected_events TO parcours_analyst;
GRANT SELECT ON {database}.rejected_messages TO parcours_analyst;
GRANT SELECT ON {database}.quarantined_rows TO parcours_analyst;
GRANT SELECT ON {database}.friction_spikes TO parcours_analyst;
GRANT SELECT ON {database}.rejections TO parcours_analyst;
GRANT SELECT ON {database}.events_resolved TO parcours_analyst;
GRANT SELECT ON {database}.sessions_resolved TO parcours_analyst;
GRANT SELECT ON {database}.friction_resolved TO parcours_analyst;
GRANT SELECT ON {database}.events_per_minute TO parcours_analyst;
GRANT SELECT ON {database}.person_overrides TO parcours_analyst;
GRANT SELECT ON {database}.person_overrides_pending TO parcours_analyst;
GRANT SELECT ON {database}.person_folds TO parcours_analyst;
GRANT SELECT ON {database}.schema_migrations TO parcours_analyst;
