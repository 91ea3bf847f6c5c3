"""KPIs per touchpoint, satisfaction from surveys, support repeat contacts (`parcours touchpoints`).

Intuition: a touchpoint is where a customer met the brand: a page (web) or screen (app), a store
(`store_visit`, named by its store_id), a support medium (`support_contact`: chat, phone, …).
Each is judged by the sessions that went through it (sessions resolved through merges, persons
across devices, as `events_resolved` does): how many, by how many persons, the share of those
sessions that bounced and that converted, the median time spent there (from the event to the
session's next event; the last event of a session has no measurable time and is left out) and
the friction signals of those sessions per 100 of them. Surveys (`survey_response`, scales
checked at decode) give per touchpoint and channel: NPS = % promoters (9-10) − % detractors
(0-6), CSAT = % of 4-5 on 1-5, CES = mean effort on 1-7, each with its number of responses (a
score without responses is empty, not 0). Support: a contact is *repeated* when the same person
contacts support again (any medium) within 24 h after it; the repeat-contact rate per medium is
the inverse of first-contact resolution.
"""

from __future__ import annotations

from datetime import datetime

from streams.queries.query import Query, QueryError

REPEAT_WINDOW_MS = 24 * 3600_000
_RANGE = "occurred_at >= {date_from:DateTime64(3)} AND occurred_at < {date_to:DateTime64(3)}"
_TOUCHPOINT = """multiIf(
                event_type IN ('page_view', 'screen_view'), page,
                event_type = 'store_visit',
                    concat('store ', JSONExtractString(properties, 'store_id')),
                event_type = 'support_contact',
                    concat('support ', JSONExtractString(properties, 'medium')),
                '')"""


def _params(date_from: datetime, date_to: datetime) -> dict[str, object]:
    if date_to <= date_from:
        raise QueryError("--to must be after --from")
    return {"date_from": date_from, "date_to": date_to}


def touchpoints_query(
    date_from: datetime, date_to: datetime, *, limit: int = 30, min_visits: int = 1
) -> Query:
    """One row per (channel, touchpoint), the most visited first."""
    params = _params(date_from, date_to)
    params.update(limit=limit, min_visits=min_visits)
    sql = f"""SELECT
    channel,
    touchpoint,
    count() AS visits,
    uniqExact(person) AS persons,
    round(countIf(bounced) / visits, 4) AS bounce_rate,
    round(countIf(converted) / visits, 4) AS conversion_rate,
    round(arrayReduce('median', arrayFlatten(groupArray(spent))), 1) AS median_seconds,
    round(100 * sum(friction) / visits, 2) AS friction_per_100_sessions
FROM
(
    SELECT
        t.channel AS channel,
        t.touchpoint AS touchpoint,
        t.session AS session,
        any(t.person) AS person,
        groupArrayIf(t.spent_s, t.spent_s >= 0) AS spent,
        any(s.bounced) AS bounced,
        any(s.converted) AS converted,
        any(s.friction_count) AS friction
    FROM
    (
        SELECT
            session,
            person,
            channel,
            touchpoint,
            if(next_at >= occurred_at, dateDiff('millisecond', occurred_at, next_at) / 1000, -1)
                AS spent_s
        FROM
        (
            SELECT
                resolved_session_id AS session,
                resolved_person_id AS person,
                channel,
                {_TOUCHPOINT} AS touchpoint,
                occurred_at,
                leadInFrame(occurred_at) OVER (
                    PARTITION BY resolved_session_id ORDER BY occurred_at, event_id
                    ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING
                ) AS next_at
            FROM
            (
                SELECT * FROM events_resolved
                WHERE {_RANGE} AND resolved_session_id != ''
                LIMIT 1 BY event_id
            )
        )
        WHERE touchpoint != ''
    ) AS t
    INNER JOIN
    (
        SELECT session_id, bounced, converted, friction_count FROM sessions FINAL
    ) AS s ON t.session = s.session_id
    GROUP BY channel, touchpoint, session
)
GROUP BY channel, touchpoint
HAVING visits >= {{min_visits:UInt32}}
ORDER BY visits DESC, channel, touchpoint
LIMIT {{limit:UInt32}}"""
    return Query(sql, params)


def satisfaction_query(date_from: datetime, date_to: datetime) -> Query:
    """NPS, CSAT and CES per surveyed touchpoint and channel, with their response counts."""
    sql = f"""SELECT
    touchpoint,
    channel,
    countIf(kind = 'nps') AS nps_responses,
    if(nps_responses = 0, nan,
       round(100 * (countIf(kind = 'nps' AND score >= 9) - countIf(kind = 'nps' AND score <= 6))
             / nps_responses, 1)) AS nps,
    countIf(kind = 'csat') AS csat_responses,
    if(csat_responses = 0, nan,
       round(100 * countIf(kind = 'csat' AND score >= 4) / csat_responses, 1)) AS csat_percent,
    countIf(kind = 'ces') AS ces_responses,
    if(ces_responses = 0, nan, round(avgIf(score, kind = 'ces'), 2)) AS ces
FROM
(
    SELECT
        if(JSONExtractString(properties, 'touchpoint') = '', '(unnamed)',
           JSONExtractString(properties, 'touchpoint')) AS touchpoint,
        channel,
        JSONExtractString(properties, 'kind') AS kind,
        JSONExtractFloat(properties, 'score') AS score
    FROM events
    WHERE event_type = 'survey_response' AND {_RANGE}
    LIMIT 1 BY event_id
)
GROUP BY touchpoint, channel
ORDER BY nps_responses + csat_responses + ces_responses DESC, touchpoint, channel"""
    return Query(sql, _params(date_from, date_to))


def repeat_contacts_query(date_from: datetime, date_to: datetime) -> Query:
    """Per support medium: contacts, those followed by another within 24 h, and the rates."""
    params = _params(date_from, date_to)
    params["repeat_ms"] = REPEAT_WINDOW_MS
    sql = """SELECT
    contact.2 AS medium,
    count() AS contacts,
    countIf(arrayExists(
        c -> c.1 > contact.1 AND c.1 <= contact.1 + {repeat_ms:UInt64}, person_contacts)) AS repeated,
    round(repeated / contacts, 4) AS repeat_contact_rate,
    round(1 - repeat_contact_rate, 4) AS first_contact_resolution_rate
FROM
(
    SELECT resolved_person_id AS person, arraySort(groupArray((ts, medium))) AS person_contacts
    FROM
    (
        SELECT
            resolved_person_id,
            toUInt64(toUnixTimestamp64Milli(occurred_at)) AS ts,
            JSONExtractString(properties, 'medium') AS medium
        FROM events_resolved
        WHERE event_type = 'support_contact'
          AND occurred_at >= {date_from:DateTime64(3)}
          AND occurred_at < {date_to:DateTime64(3)} + toIntervalMillisecond({repeat_ms:UInt64})
        LIMIT 1 BY event_id
    )
    GROUP BY resolved_person_id
)
ARRAY JOIN person_contacts AS contact
WHERE contact.1 < toUInt64(toUnixTimestamp64Milli({date_to:DateTime64(3)}))
  AND contact.1 >= toUInt64(toUnixTimestamp64Milli({date_from:DateTime64(3)}))
GROUP BY medium
ORDER BY contacts DESC, medium"""
    return Query(sql, params)
