"""The journey map (`parcours paths`): the most frequent sequences of touchpoints, and how
customers move between channels.

Intuition: each session (resolved through merges) is read as the sequence of its touchpoints in
time order — `web /sale`, `app shoes`, `store paris-01`, `support chat`, `web purchase` — with
consecutive repeats folded (a reload is not a step). With `start`, the path is the part of the
sequence from the first occurrence of that touchpoint on, `depth` steps long; with `end`, the
part up to the first occurrence of that touchpoint, the last `depth` steps; without either, the
first `depth` steps. Paths are counted in sessions; drop-off at step k is the share of the
sessions still on a path at step k-1 that have no step k. The same counts give the nodes and
links of a Sankey diagram (node = step number and touchpoint). Channel transitions count
consecutive events of a session on different channels (within a session: changes only) and
every pair of consecutive sessions of a person by the channel each started on (across sessions:
the diagonal is staying on a channel), a from/to matrix either way.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from streams.queries.query import Query, QueryError, QueryResult, run_query

MAX_DEPTH = 10
_RANGE = "occurred_at >= {date_from:DateTime64(3)} AND occurred_at < {date_to:DateTime64(3)}"
_LABEL = """multiIf(
            event_type IN ('page_view', 'screen_view'), concat(channel, ' ', page),
            event_type = 'store_visit', concat('store ', JSONExtractString(properties, 'store_id')),
            event_type = 'support_contact',
                concat('support ', JSONExtractString(properties, 'medium')),
            event_type = 'purchase' AND NOT duplicate_transaction, concat(channel, ' purchase'),
            '')"""


def paths_query(
    date_from: datetime,
    date_to: datetime,
    *,
    start: str | None = None,
    end: str | None = None,
    depth: int = 4,
) -> Query:
    """One row per distinct path (an array of touchpoints) with its number of sessions."""
    if start and end:
        raise QueryError("give a start or an end touchpoint, not both")
    if not 1 <= depth <= MAX_DEPTH:
        raise QueryError(f"depth: 1 to {MAX_DEPTH}")
    if date_to <= date_from:
        raise QueryError("--to must be after --from")
    params: dict[str, Any] = {"date_from": date_from, "date_to": date_to, "depth": depth}
    if start:
        params["anchor"] = start
        cut = "arraySlice(steps, indexOf(steps, {anchor:String}), {depth:UInt32})"
        keep = "has(steps, {anchor:String})"
    elif end:
        params["anchor"] = end
        cut = "arraySlice(arraySlice(steps, 1, indexOf(steps, {anchor:String})), -{depth:UInt32})"
        keep = "has(steps, {anchor:String})"
    else:
        cut = "arraySlice(steps, 1, {depth:UInt32})"
        keep = "length(steps) > 0"
    sql = f"""SELECT path, count() AS sessions
FROM
(
    SELECT {cut} AS path
    FROM
    (
        SELECT
            session,
            arrayFilter(
                (label, i) -> i = 1 OR label != labels[i - 1],
                labels,
                arrayEnumerate(labels)
            ) AS steps
        FROM
        (
            SELECT
                resolved_session_id AS session,
                arrayMap(x -> x.3, arraySort(groupArray((occurred_at, event_id, label)))) AS labels
            FROM
            (
                SELECT resolved_session_id, occurred_at, event_id, {_LABEL} AS label
                FROM events_resolved
                WHERE {_RANGE} AND resolved_session_id != ''
                LIMIT 1 BY event_id
            )
            WHERE label != ''
            GROUP BY resolved_session_id
        )
    )
    WHERE {keep}
)
GROUP BY path
ORDER BY sessions DESC, path"""
    return Query(sql, params)


def channel_transitions_query(date_from: datetime, date_to: datetime) -> Query:
    """(scope, from, to, transitions): within sessions (consecutive events) and across a
    person's consecutive sessions (their first channels)."""
    if date_to <= date_from:
        raise QueryError("--to must be after --from")
    sql = f"""SELECT scope, from_channel, to_channel, count() AS transitions
FROM
(
    SELECT 'within session' AS scope, pair.1 AS from_channel, pair.2 AS to_channel
    FROM
    (
        SELECT arrayMap(x -> x.3, arraySort(groupArray((occurred_at, event_id, channel)))) AS chans
        FROM (SELECT * FROM events_resolved WHERE {_RANGE} AND resolved_session_id != ''
              LIMIT 1 BY event_id)
        GROUP BY resolved_session_id
    )
    ARRAY JOIN arrayZip(arrayPopBack(chans), arrayPopFront(chans)) AS pair
    WHERE pair.1 != pair.2
    UNION ALL
    SELECT 'across sessions' AS scope, pair.1 AS from_channel, pair.2 AS to_channel
    FROM
    (
        SELECT arrayMap(x -> x.3, arraySort(groupArray((started_at, session_id, channel)))) AS chans
        FROM
        (
            SELECT resolved_person_id, started_at, session_id, channels[1] AS channel
            FROM sessions_resolved FINAL
            WHERE {_RANGE.replace("occurred_at", "started_at")}
            LIMIT 1 BY session_id
        )
        GROUP BY resolved_person_id
    )
    ARRAY JOIN arrayZip(arrayPopBack(chans), arrayPopFront(chans)) AS pair
)
GROUP BY scope, from_channel, to_channel
ORDER BY scope DESC, transitions DESC, from_channel, to_channel"""
    return Query(sql, {"date_from": date_from, "date_to": date_to})


@dataclass(frozen=True)
class PathRow:
    path: tuple[str, ...]
    sessions: int


@dataclass(frozen=True)
class StepDropOff:
    step: int
    sessions: int
    dropped: int
    drop_off_rate: float


def path_rows(client: Client, query: Query) -> list[PathRow]:
    return [PathRow(tuple(p), int(n)) for p, n in run_query(client, query).rows]


def drop_off(rows: list[PathRow]) -> list[StepDropOff]:
    """Sessions still on a path at each step, and the share lost since the previous step."""
    reached = Counter[int]()
    for r in rows:
        for k in range(1, len(r.path) + 1):
            reached[k] += r.sessions
    out = []
    for k in sorted(reached):
        before = reached[k - 1] if k > 1 else reached[k]
        lost = before - reached[k]
        out.append(StepDropOff(k, reached[k], lost, round(lost / before, 4) if before else 0.0))
    return out


def sankey(rows: list[PathRow]) -> dict[str, list[dict[str, Any]]]:
    """Nodes (`id` = "step:touchpoint") and links (source, target, value) for a Sankey chart."""
    nodes: dict[str, int] = {}
    links: Counter[tuple[str, str]] = Counter()
    for r in rows:
        ids = [f"{k}:{label}" for k, label in enumerate(r.path, 1)]
        for node in ids:
            nodes[node] = nodes.get(node, 0) + r.sessions
        for a, b in itertools.pairwise(ids):
            links[(a, b)] += r.sessions
    return {
        "nodes": [
            {"id": n, "step": int(n.split(":", 1)[0]), "label": n.split(":", 1)[1], "sessions": v}
            for n, v in nodes.items()
        ],
        "links": [{"source": a, "target": b, "value": v} for (a, b), v in links.most_common()],
    }


def path_result(rows: list[PathRow], limit: int) -> QueryResult:
    total = sum(r.sessions for r in rows)
    return QueryResult(
        ["path", "steps", "sessions", "share"],
        [
            (" → ".join(r.path), len(r.path), r.sessions, round(r.sessions / total, 4))
            for r in rows[:limit]
        ],
    )
