"""One person's journey (`parcours person ID`): what is behind a number.

Intuition: an analyst holds an id from a report — a customer id, a device id, or a person id
such as `anon:<device>` — and wants every row Parcours holds for the person behind it, across
devices and channels, in time order. The id is first turned into the person(s) its rows resolve
to (a device that changed hands resolves to each of its owners; an anonymous device that logged
in, to its customer). A person's rows are then found by their *stored* person: the customer id
itself and `anon:<device>` for every device linked to it (the `events` key starts with the
stored person, so this reads a few ranges, not the table), and kept when they resolve to that
person by the identity rule (`person_overrides`, as the funnel does). Sessions are placed by
their start, signals by their time, like the resolved views; sessions and signals are read
`FINAL` (newest version, withdrawn ones left out) and events `FINAL` (a revision may have moved
an event to another session). Session ids are resolved through `session_merges`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clickhouse_connect.driver.client import Client

from streams.queries.query import Query, QueryError, QueryResult, run_query

#: The person of a row from its stored person, device id and time (`t`), by the identity rule.
_RESOLVED = "multiIf({customer} != '', {customer}, o.person_id != '', o.person_id, {stored})"
_MAX_ID = 256


def persons_query(ident: str) -> Query:
    """The persons the rows naming `ident` (as person, customer or device) resolve to."""
    _check(ident)
    return Query(
        f"""SELECT DISTINCT person FROM
(
    SELECT {_RESOLVED.format(customer="e.customer_id", stored="e.person_id")} AS person
    FROM
    (
        SELECT customer_id, person_id, device_id, occurred_at FROM events
        WHERE person_id = {{ident:String}} OR customer_id = {{ident:String}}
           OR device_id = {{ident:String}}
    ) AS e
    LEFT ASOF JOIN person_overrides AS o
        ON e.device_id = o.device_id AND e.occurred_at >= o.valid_from
    UNION ALL
    SELECT customer_id AS person FROM identity_links WHERE customer_id = {{ident:String}}
)
ORDER BY person""",
        {"ident": ident},
    )


def _stored(person: str) -> str:
    """SQL: the stored person ids that may resolve to `{person}`."""
    return (
        "(SELECT {person:String} UNION ALL SELECT concat('anon:', device_id) "
        "FROM identity_links WHERE customer_id = {person:String})"
    )


def events_query(person: str) -> Query:
    _check(person)
    return Query(
        f"""SELECT
    e.occurred_at AS occurred_at,
    if(m.merged_into != '', m.merged_into, e.session_id) AS session_id,
    e.channel AS channel,
    e.device_id AS device_id,
    e.event_type AS event_type,
    e.page AS page,
    e.value AS value,
    e.late AS late,
    e.duplicate_transaction AS duplicate_transaction,
    e.event_id AS event_id
FROM
(
    SELECT * FROM events FINAL WHERE person_id IN {_stored(person)}
) AS e
LEFT ASOF JOIN person_overrides AS o
    ON e.device_id = o.device_id AND e.occurred_at >= o.valid_from
LEFT JOIN
(
    SELECT session_id AS merged_session_id, any(merged_into) AS merged_into
    FROM session_merges GROUP BY session_id
) AS m ON e.session_id = m.merged_session_id
WHERE {_RESOLVED.format(customer="e.customer_id", stored="e.person_id")} = {{person:String}}
ORDER BY occurred_at, event_id""",
        {"person": person},
    )


def _by_anon_device(table: str, at: str, columns: str, person: str) -> Query:
    """Rows of `sessions` or `friction` (stored under a customer or `anon:<device>`) of the
    person, resolved through the device named in their person id at time `at`."""
    _check(person)
    return Query(
        f"""SELECT {columns}
FROM
(
    SELECT *, if(startsWith(person_id, 'anon:'), substring(person_id, 6), '') AS anon_device
    FROM {table} FINAL WHERE person_id IN {_stored(person)}
) AS r
LEFT ASOF JOIN person_overrides AS o
    ON r.anon_device = o.device_id AND r.{at} >= o.valid_from
WHERE {_RESOLVED.format(customer="if(r.anon_device = '', r.person_id, '')", stored="r.person_id")}
    = {{person:String}}
ORDER BY r.{at}""",
        {"person": person},
    )


def sessions_query(person: str) -> Query:
    return _by_anon_device(
        "sessions",
        "started_at",
        "r.session_id AS session_id, r.started_at AS started_at, r.ended_at AS ended_at, "
        "r.channels AS channels, r.events AS events, r.bounced AS bounced, "
        "r.converted AS converted, r.revenue AS revenue, r.friction_count AS friction, "
        "r.is_open AS is_open",
        person,
    )


def signals_query(person: str) -> Query:
    return _by_anon_device(
        "friction",
        "occurred_at",
        "r.occurred_at AS occurred_at, r.type AS type, r.session_id AS session_id, "
        "r.channel AS channel, r.device_id AS device_id, r.details AS details",
        person,
    )


def links_query(person: str) -> Query:
    _check(person)
    return Query(
        """SELECT DISTINCT device_id, linked_at FROM identity_links
WHERE customer_id = {person:String} ORDER BY linked_at, device_id""",
        {"person": person},
    )


@dataclass
class PersonJourney:
    """Everything stored about one person; each part a query result (columns and rows)."""

    person: str
    sessions: QueryResult
    events: QueryResult
    signals: QueryResult
    links: QueryResult
    #: Other persons the same id resolved to (a device that changed hands).
    also: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "person": self.person,
            "also": self.also,
            "sessions": self.sessions.records(),
            "events": self.events.records(),
            "signals": self.signals.records(),
            "identity_links": self.links.records(),
        }


def person_journeys(
    client: Client, ident: str, settings: dict[str, Any] | None = None
) -> list[PersonJourney]:
    """The journeys of the persons `ident` resolves to (none: an unknown id); `settings` go
    with every query (the CLI reads with `readonly = 1`, as every analyst query does)."""

    def run(query: Query) -> QueryResult:
        return run_query(client, query, settings=settings)

    persons = [str(r[0]) for r in run(persons_query(ident)).rows]
    journeys = []
    for person in persons:
        journeys.append(
            PersonJourney(
                person,
                run(sessions_query(person)),
                run(events_query(person)),
                run(signals_query(person)),
                run(links_query(person)),
                [p for p in persons if p != person],
            )
        )
    return journeys


def _check(ident: str) -> None:
    if not ident.strip() or len(ident) > _MAX_ID:
        raise QueryError(f"a person, customer or device id of 1 to {_MAX_ID} characters")
