#!/bin/bash
# docker-compose: creates the roles (roles.sql) and one user per part of Parcours, with the
# passwords from the environment file (.env, never committed; see .env.example). Runs once, on
# the first start of an empty ClickHouse volume (/docker-entrypoint-initdb.d).
set -euo pipefail
db="${CLICKHOUSE_DB:-parcours}"
run() { clickhouse client --user "$CLICKHOUSE_USER" --password "$CLICKHOUSE_PASSWORD" --multiquery; }
sed "s/{database}/\`$db\`/g" /parcours/roles.sql | run
run <<SQL
CREATE USER IF NOT EXISTS parcours_sink IDENTIFIED WITH sha256_password BY '${PARCOURS_SINK_PASSWORD}' DEFAULT DATABASE \`$db\`;
CREATE USER IF NOT EXISTS parcours_analyst IDENTIFIED WITH sha256_password BY '${PARCOURS_ANALYST_PASSWORD}' DEFAULT DATABASE \`$db\`;
GRANT parcours_writer TO parcours_sink;
GRANT parcours_analyst TO parcours_analyst;
ALTER USER parcours_sink DEFAULT ROLE parcours_writer;
ALTER USER parcours_analyst DEFAULT ROLE parcours_analyst;
SQL
