"""`parcours retention` on chDB against the Python oracle (`retention_oracle.py`): random
customers over ten weeks on web, app and store, some starting anonymously on a device that logs
in later; golden SQL; the command."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime

import pytest
from clickhouse_connect.driver.client import Client
from typer.testing import CliRunner

from streams.core.records import EventRow, IdentityLink, Record
from streams.queries.query import QueryError
from streams.queries.retention import retention_query, retention_rows, value_query, value_rows
from tests.queries.retention_oracle import Act, retention, value
from tests.queries.test_funnel import GOLDEN, T0, row, store

DAY = 86_400_000
START = datetime.fromtimestamp(T0 / 1000, UTC)  # Monday 2026-11-02
END = datetime.fromtimestamp((T0 + 70 * DAY) / 1000, UTC)


def dataset(seed: int) -> tuple[list[Record], list[Act]]:
    rng = random.Random(seed)
    records: list[Record] = []
    acts: list[Act] = []
    for p in range(70):
        person = f"c{p}"
        device = f"d{p}"
        anonymous_until = rng.choice((0, 0, 2))  # the first events anonymous, then a login
        ts = T0 + rng.randrange(-5 * DAY, 60 * DAY)
        count = rng.randint(1, 10)
        # too few events to reach the login: an anonymous person who never logged in
        owner = person if count >= anonymous_until else f"anon:{device}"
        for i in range(count):
            ts += rng.randint(1, 12 * DAY)
            channel = rng.choice(("web", "web", "app", "store"))
            kind = rng.choice(("page_view", "view_item", "purchase"))
            amount = round(rng.uniform(5, 200), 2) if kind == "purchase" else None
            anonymous = i < anonymous_until
            r: EventRow = row(
                f"{person}-{i}",
                f"anon:{device}" if anonymous else person,
                ts,
                kind,
                channel,
                device=device,
                anonymous=anonymous,
            )
            records.append(
                EventRow(**{**{f: getattr(r, f) for f in r.__dataclass_fields__}, "value": amount})
            )
            acts.append(Act(owner, ts, channel, kind == "purchase", amount or 0.0))
            if i == anonymous_until - 1:
                records.append(IdentityLink(device, person, ts + 1, 30 * DAY))
    return records, acts


@pytest.mark.integration
@pytest.mark.parametrize("seed", [1, 2])
def test_retention_and_value_match_the_oracle(ch: Client, seed: int) -> None:
    records, acts = dataset(seed)
    store(ch, records, batch_rows=41)
    start_ms, end_ms = T0, T0 + 70 * DAY
    for cohort, period, activity in (
        ("first_visit", "week", "any"),
        ("first_visit", "day", "any"),
        ("first_purchase", "day", "purchase"),
        ("first_purchase", "month", "purchase"),
        ("first_visit", "month", "purchase"),
    ):
        got = {
            (r.cohort, r.period): (r.cohort_persons, r.active_persons)
            for r in retention_rows(
                ch, retention_query(START, END, cohort=cohort, period=period, activity=activity)
            )
        }
        assert got == retention(acts, cohort, period, activity, start_ms, end_ms), cohort
        again = retention_query(START, END, cohort=cohort, period=period, activity=activity)
        assert retention_rows(ch, again) == retention_rows(ch, again)  # stable from run to run
    for cohort in ("first_visit", "first_purchase"):
        rows = value_rows(ch, value_query(START, END, cohort=cohort, churn_days=20))
        got_value = {
            (r.cohort, r.acquisition_channel): (
                r.persons,
                r.buyers,
                r.repeat_buyers,
                r.ltv_30d,
                r.ltv_365d,
                r.churned,
            )
            for r in rows
        }
        want = value(acts, cohort, "week", 20, start_ms, end_ms)
        assert got_value.keys() == want.keys()
        for key, (persons, buyers, repeat, ltv30, ltv365, churned) in want.items():
            g = got_value[key]
            assert g[:3] == (persons, buyers, repeat) and g[5] == churned, key
            assert g[3] == pytest.approx(ltv30, abs=0.011) and g[4] == pytest.approx(
                ltv365, abs=0.011
            )


@pytest.mark.unit
def test_retention_sql_matches_the_golden_files() -> None:
    for name, query in (
        ("retention_week_first_visit", retention_query(START, END)),
        (
            "value_month_first_purchase",
            value_query(START, END, cohort="first_purchase", period="month"),
        ),
    ):
        path = GOLDEN / f"{name}.sql"
        if os.environ.get("UPDATE_GOLDEN"):
            path.write_text(query.sql + "\n")
        assert query.sql + "\n" == path.read_text()
    with pytest.raises(QueryError, match="cohort"):
        retention_query(START, END, cohort="signup")
    with pytest.raises(QueryError, match="period"):
        value_query(START, END, period="fortnight")
    with pytest.raises(QueryError, match="churn"):
        value_query(START, END, churn_days=0)


@pytest.mark.integration
def test_the_command_prints_both_tables(ch: Client) -> None:
    from streams.cli.main import app

    store(ch, dataset(3)[0])
    database = ch.query("SELECT currentDatabase()").result_rows[0][0]
    result = CliRunner().invoke(
        app, ["retention", "--from", "2026-11-01", "--to", "2027-01-20", "--database", database]
    )
    assert result.exit_code == 0, result.output
    assert "Retention by week of first visit" in result.output
    assert "Repeat purchase, lifetime value and churn" in result.output
