"""Compaction: fold the person overrides into the event rows (issue 13 §1, migration 0010).

Intuition: a login re-attributes the device's earlier anonymous events to the customer. The
journey core cannot rewrite rows it has already written, so the rule lives in
`person_overrides` (0008) and every funnel used to apply it with an ASOF join over all of its
step events. Folding applies it once, in storage: the rows whose stored person is not the one
the overrides give them are written again under the resolved person (and the old rows
deleted: `person_id` is in the sort key), then the fold records how far each table's
partitions are folded (`person_folds`). From then on queries join only
`person_overrides_pending`: the overrides of devices touched since (usually none), and read the
stored person for everyone else. The answers do not change, by construction: a folded row holds
exactly what the join would have given it, and a row the fold has not seen is still joined.

PostHog's persons-on-events keeps `person_overrides` (old person -> new person) and squashes it
into the events with a job; ours are derived from the links deterministically (0008), so the
fold needs no bookkeeping of which override it applied: it recomputes the pending ones and
marks blocks, not overrides, as folded.

Run it while nothing else writes `events` or `identity_links` (the end of `parcours ingest`,
or `parcours compact` between runs): the watermark it records covers every part present when
it finishes.
"""

from __future__ import annotations

from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from streams.clickhouse.errors import StorageError

__all__ = [
    "FoldError",
    "FoldStats",
    "fold_persons",
    "has_pending_overrides",
    "merge_versions",
]

_NO_DEDUP = {"insert_deduplicate": 0, "insert_deduplication_token": ""}
_SYNC = {"mutations_sync": 2}


class FoldError(StorageError):
    """The fold could not run (the database lacks migration 0010, or a statement failed)."""


@dataclass(frozen=True)
class FoldStats:
    """What one fold did: rows rewritten under their resolved person, partitions marked."""

    rows_rewritten: int
    partitions_marked: int


_FIND = """INSERT INTO person_fold_work (event_id, old_person, new_person)
SELECT e.event_id, e.person_id, o.person_id
FROM
(
    SELECT event_id, person_id, device_id, occurred_at
    FROM events
    WHERE customer_id = '' AND device_id != ''
      AND device_id IN (SELECT device_id FROM person_overrides_pending)
) AS e
ASOF INNER JOIN person_overrides_pending AS o
    ON e.device_id = o.device_id AND e.occurred_at >= o.valid_from
WHERE o.person_id != e.person_id"""

_MARK = """INSERT INTO person_folds (folded_at, table_name, partition_id, max_block)
SELECT now64(3), table, partition_id, max(max_block_number)
FROM system.parts
WHERE database = currentDatabase() AND active AND table IN ('events', 'identity_links')
GROUP BY table, partition_id"""


def _event_columns(client: Client) -> list[str]:
    """The stored columns of `events`, in order (ALIAS/MATERIALIZED ones are not inserted)."""
    result = client.query(
        "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = 'events' "
        "AND default_kind NOT IN ('ALIAS', 'MATERIALIZED') ORDER BY position"
    )
    return [str(row[0]) for row in result.result_rows]


def fold_persons(client: Client) -> FoldStats:
    """Rewrite the rows the pending overrides re-attribute, then mark every part folded.

    Steps, each idempotent: (1) list the rows to rewrite in `person_fold_work` (event id, stored
    person, resolved person); (2) insert them again under the resolved person; (3) delete the
    rows stored under the old person (a mutation, waited for); (4) record each partition's
    highest block. A fold interrupted after (2) leaves both rows of an event; the next fold
    lists them again (the old row still disagrees with the overrides), and `uniqExact`-style
    counts were never inflated by the copy under the resolved person, which is the same person
    the join gives the old row.
    """
    try:
        client.command("TRUNCATE TABLE person_fold_work")
        client.command(_FIND, settings=_NO_DEDUP)
        rewritten = int(client.command("SELECT count() FROM person_fold_work"))  # type: ignore[arg-type]
        if rewritten:
            columns = _event_columns(client)
            selected = ", ".join(
                "w.new_person AS person_id" if c == "person_id" else f"e.{c} AS {c}"
                for c in columns
            )
            client.command(
                f"INSERT INTO events ({', '.join(columns)}) SELECT {selected} "
                "FROM events AS e INNER JOIN person_fold_work AS w "
                "ON e.event_id = w.event_id AND e.person_id = w.old_person",
                settings=_NO_DEDUP,
            )
            client.command(
                "ALTER TABLE events DELETE WHERE customer_id = '' AND (event_id, person_id) IN "
                "(SELECT event_id, old_person FROM person_fold_work)",
                settings=_SYNC,
            )
            # The work table names persons: emptied at once, so an erasure (`parcours
            # forget`) never has to look there.
            client.command("TRUNCATE TABLE person_fold_work")
        client.command(_MARK, settings=_NO_DEDUP)
        marked = int(
            client.command(  # type: ignore[arg-type]
                "SELECT count() FROM person_folds FINAL"
            )
        )
    except Exception as exc:  # clickhouse-connect and chDB raise several unrelated types
        raise FoldError(f"person fold failed: {exc}") from exc
    return FoldStats(rows_rewritten=rewritten, partitions_marked=marked)


def has_pending_overrides(client: Client) -> bool:
    """Whether some row may still need `person_overrides_pending` (a link or a customer-less
    event written since the last fold, on a device with links). A funnel built without the
    join (`funnel_query(..., join_overrides=False)`) is exact only when this is false."""
    try:
        pending = client.command("SELECT count() FROM person_overrides_pending")
    except Exception as exc:  # clickhouse-connect and chDB raise several unrelated types
        raise FoldError(f"could not read person_overrides_pending: {exc}") from exc
    return int(pending) > 0  # type: ignore[arg-type]


#: The versioned tables the KPIs read `FINAL` (0004).
VERSIONED = ("sessions", "friction")


def merge_versions(client: Client) -> None:
    """Merge each versioned table down to one part per partition (`OPTIMIZE … FINAL`).

    `FINAL` merges a session's versions at query time, across every part that may hold one
    (`sessions` is not partitioned: all of them); with one part per partition there is nothing
    left to merge, and the session KPIs read the current rows at the cost of a plain scan
    (issue 13: under 200 ms on 10M events). Withdrawn rows stay in the part, marked, and
    `FINAL` still leaves them out. Safe beside writers: a merge replaces parts, never rows'
    meaning; it rewrites the table once, so it belongs to compaction, not to every query."""
    try:
        for table in VERSIONED:
            client.command(f"OPTIMIZE TABLE {table} FINAL")
    except Exception as exc:  # clickhouse-connect and chDB raise several unrelated types
        raise FoldError(f"merging the versioned tables failed: {exc}") from exc
