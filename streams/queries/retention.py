"""Retention, repeat purchase and lifetime value by cohort (`parcours retention`).

Intuition: a person joins a cohort in the period (week or month) of their first visit — or of
their first purchase — on any channel, store included: their first stored event (purchase) with
persons resolved across devices (`person_overrides`, like funnels). The retention table then
says, for each cohort and each later period, how many of its persons were active (any event, or
with `--activity purchase` a purchase) in that period: period 0 is the cohort's own. The value
table says, per cohort and acquisition channel (the channel of the person's first event): how
many bought twice or more (repeat-purchase rate), the revenue per person within 30, 90 and 365
days of joining (lifetime value; a cohort younger than the horizon has an incomplete figure), and
how many have churned (no activity in the `churn_days` before the end of the range). A purchase
flagged `duplicate_transaction` is a copy and counts nowhere. History before `--from` is read
too: a person first seen before the range belongs to an earlier cohort, not to this one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from clickhouse_connect.driver.client import Client

from streams.queries.query import Query, QueryError, run_query

PERIODS = {
    "day": ("toDate", "day"),
    "week": ("toMonday", "week"),
    "month": ("toStartOfMonth", "month"),
}
COHORTS = {"first_visit": "first_visit", "first_purchase": "first_purchase"}

#: Each person's events, resolved and folded once: every figure below is a function of one
#: person's list. (A first version joined a CTE of events to a CTE of cohorts built on the same
#: CTE; ClickHouse evaluates each reference anew, and on chDB the counts of the second run of
#: the same query differed from the first's: one reference, one evaluation, stable answers.)
_COHORTS = """cohorts AS (
    SELECT
        person,
        {cohort} AS joined,
        {trunc}(joined) AS cohort,
        count() OVER (PARTITION BY cohort) AS cohort_persons,
        acquisition_channel,
        purchases,
        last_seen,
        acts
    FROM
    (
        SELECT
            person,
            min(occurred_at) AS first_visit,
            minIf(occurred_at, is_purchase) AS first_purchase,
            countIf(is_purchase) AS purchases,
            argMin(channel, occurred_at) AS acquisition_channel,
            max(occurred_at) AS last_seen,
            groupArray((occurred_at, is_purchase, value)) AS acts
        FROM
        (
            SELECT
                multiIf(e.customer_id != '', e.customer_id, o.person_id != '', o.person_id,
                        e.person_id) AS person,
                e.occurred_at AS occurred_at,
                e.channel AS channel,
                e.event_type = 'purchase' AS is_purchase,
                ifNull(e.value, 0) AS value
            FROM
            (
                SELECT event_id, customer_id, person_id, device_id, occurred_at, channel,
                       event_type, value
                FROM events
                WHERE occurred_at < {date_to:DateTime64(3)} AND NOT duplicate_transaction
                LIMIT 1 BY event_id
            ) AS e
            LEFT ASOF JOIN person_overrides AS o
                ON e.device_id = o.device_id AND e.occurred_at >= o.valid_from
        )
        GROUP BY person
    )
    WHERE joined >= {date_from:DateTime64(3)} AND joined < {date_to:DateTime64(3)}
      AND (purchases > 0 OR {cohort_is_visit:Bool})
)"""


def _params(cohort: str, period: str, date_from: datetime, date_to: datetime) -> dict[str, object]:
    if cohort not in COHORTS:
        raise QueryError(f"cohort {cohort!r}: use first_visit or first_purchase")
    if period not in PERIODS:
        raise QueryError(f"period {period!r}: use day, week or month")
    if date_to <= date_from:
        raise QueryError("--to must be after --from")
    return {"date_from": date_from, "date_to": date_to, "cohort_is_visit": cohort == "first_visit"}


def _cohorts(cohort: str, period: str) -> str:
    return _COHORTS.replace("{trunc}", PERIODS[period][0]).replace("{cohort}", COHORTS[cohort])


def retention_query(
    date_from: datetime,
    date_to: datetime,
    *,
    cohort: str = "first_visit",
    period: str = "week",
    activity: str = "any",
) -> Query:
    """One row per (cohort, period offset): active persons and their share of the cohort."""
    params = _params(cohort, period, date_from, date_to)
    if activity not in ("any", "purchase"):
        raise QueryError(f"activity {activity!r}: use any or purchase")
    trunc, unit = PERIODS[period]
    only = " AND a.2" if activity == "purchase" else ""
    sql = f"""WITH {_cohorts(cohort, period)}
SELECT
    cohort,
    period,
    any(cohort_persons) AS cohort_persons,
    count() AS active_persons,
    round(active_persons / cohort_persons, 4) AS retention_rate
FROM
(
    SELECT
        cohort,
        cohort_persons,
        arrayJoin(arrayDistinct(arrayMap(
            a -> dateDiff('{unit}', cohort, {trunc}(a.1)),
            arrayFilter(a -> a.1 >= joined{only}, acts)
        ))) AS period
    FROM cohorts
)
GROUP BY cohort, period
ORDER BY cohort, period"""
    return Query(sql, params)


def value_query(
    date_from: datetime,
    date_to: datetime,
    *,
    cohort: str = "first_visit",
    period: str = "week",
    churn_days: int = 30,
) -> Query:
    """One row per (cohort, acquisition channel): repeat purchase, LTV 30/90/365, churn."""
    params = _params(cohort, period, date_from, date_to)
    if churn_days <= 0:
        raise QueryError("--churn-days must be positive")
    params["churn_days"] = churn_days
    ltv = ",\n    ".join(
        f"round(sum(arraySum(arrayMap(a -> if(a.2 AND a.1 >= joined AND a.1 < joined + "
        f"toIntervalDay({d}), a.3, 0), acts))) / persons, 2) AS ltv_{d}d"
        for d in (30, 90, 365)
    )
    sql = f"""WITH {_cohorts(cohort, period)}
SELECT
    cohort,
    acquisition_channel,
    count() AS persons,
    countIf(purchases > 0) AS buyers,
    countIf(purchases >= 2) AS repeat_buyers,
    round(if(buyers = 0, 0, repeat_buyers / buyers), 4) AS repeat_purchase_rate,
    {ltv},
    countIf(last_seen < {{date_to:DateTime64(3)}} - toIntervalDay({{churn_days:UInt32}})) AS churned
FROM cohorts
GROUP BY cohort, acquisition_channel
ORDER BY cohort, persons DESC, acquisition_channel"""
    return Query(sql, params)


@dataclass(frozen=True)
class RetentionRow:
    cohort: date
    period: int
    cohort_persons: int
    active_persons: int
    retention_rate: float


@dataclass(frozen=True)
class ValueRow:
    cohort: date
    acquisition_channel: str
    persons: int
    buyers: int
    repeat_buyers: int
    repeat_purchase_rate: float
    ltv_30d: float
    ltv_90d: float
    ltv_365d: float
    churned: int


def retention_rows(client: Client, query: Query) -> list[RetentionRow]:
    return [RetentionRow(**r) for r in run_query(client, query).records()]


def value_rows(client: Client, query: Query) -> list[ValueRow]:
    return [ValueRow(**r) for r in run_query(client, query).records()]
