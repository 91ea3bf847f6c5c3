"""What `parcours sql` refuses before it reaches ClickHouse: table functions that touch the
file system or the network.

Intuition: read-only (ClickHouse's `readonly` setting) stops writes to tables, but a SELECT
over `file('/etc/passwd')` or `url(…)` is a read, and `INTO OUTFILE` writes a file on the
client side. Analysts query the Parcours tables; nothing they need reads files or other
servers. On a ClickHouse server the `parcours_analyst` role has no such sources granted either
(infra/clickhouse/roles/roles.sql); this guard is what protects an embedded chDB database,
where there are no roles. It is a refusal list over the statement with comments removed, so a
false positive (the word inside a string literal) refuses a harmless query: say so and move on.
"""

from __future__ import annotations

import re

from streams.queries.query import QueryError

#: Table functions and clauses that read or write outside the database.
FORBIDDEN_FUNCTIONS = (
    "file",
    "fileCluster",
    "url",
    "urlCluster",
    "s3",
    "s3Cluster",
    "gcs",
    "azureBlobStorage",
    "azureBlobStorageCluster",
    "hdfs",
    "hdfsCluster",
    "iceberg",
    "icebergS3",
    "icebergLocal",
    "deltaLake",
    "deltaLakeLocal",
    "hudi",
    "input",
    "remote",
    "remoteSecure",
    "cluster",
    "clusterAllReplicas",
    "mysql",
    "postgresql",
    "sqlite",
    "mongodb",
    "redis",
    "odbc",
    "jdbc",
    "executable",
    "python",
    "dictionary",
)
_COMMENTS = re.compile(r"--[^\n]*|#[^\n]*|/\*.*?\*/", re.DOTALL)
_FUNCTION = re.compile(
    r"(?<![\w.])[`\"]?(" + "|".join(FORBIDDEN_FUNCTIONS) + r")[`\"]?\s*\(", re.IGNORECASE
)
_CLAUSE = re.compile(r"\b(INTO\s+OUTFILE|FROM\s+INFILE)\b", re.IGNORECASE)


class ForbiddenQuery(QueryError):
    """A statement that would touch files or other servers."""


def check_statement(sql: str) -> None:
    """Raise ForbiddenQuery when `sql` uses a table function or clause outside the database."""
    text = _COMMENTS.sub(" ", sql)
    found = _FUNCTION.search(text)
    if found:
        raise ForbiddenQuery(
            f"table function {found.group(1)}() is refused: parcours sql reads the Parcours "
            "tables only (no files, URLs or other servers)"
        )
    clause = _CLAUSE.search(text)
    if clause:
        raise ForbiddenQuery(
            f"{' '.join(clause.group(1).split()).upper()} is refused: parcours sql prints "
            "results; use --format csv and a shell redirect to save them"
        )
