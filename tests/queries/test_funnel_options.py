"""Funnel options on chDB: step filter operators, exclusions, conversion over time, campaign
attribution; checked against the pure-Python reference (`funnel_oracle.reference_levels`) or
hand-computed answers, plus golden SQL for a funnel using them all."""

from __future__ import annotations

import dataclasses
import os
import random
from collections import Counter
from datetime import UTC, datetime

import pytest
from clickhouse_connect.driver.client import Client

from streams.clickhouse.person_fold import has_pending_overrides
from streams.core.records import EventRow
from streams.queries.funnel import Exclusion, FunnelSpec, Step, funnel_query, funnel_rows
from streams.queries.query import QueryError, run_query
from tests.queries.funnel_oracle import reference_levels
from tests.queries.test_funnel import FROM, GOLDEN, T0, TO, row, spec, store

DAY = 86_400_000


def levels(client: Client, funnel: FunnelSpec) -> list[int]:
    """Persons per step; with no override pending, the funnel without the join agrees."""
    result = run_query(client, funnel_query(funnel))
    if not has_pending_overrides(client):
        alone = run_query(client, funnel_query(funnel, join_overrides=False))
        assert sorted(alone.rows, key=repr) == sorted(result.rows, key=repr)
    return [r.persons for r in funnel_rows(funnel, result)]


@pytest.mark.unit
def test_filters_parse_with_their_operators() -> None:
    step = Step.parse("purchase[channel!=web,value>50,properties.category in shoes|bags]")
    assert [(f.name, f.op, f.value) for f in step.filters] == [
        ("channel", "!=", "web"),
        ("value", ">", "50"),
        ("properties.category", "in", "shoes|bags"),
    ]
    with pytest.raises(QueryError, match="not a number"):
        funnel_query(spec(["view_item", "purchase[value>lots]"]))
    with pytest.raises(QueryError, match="cannot filter on 'channel' with '>'"):
        funnel_query(spec(["view_item", "purchase[channel>web]"]))
    with pytest.raises(QueryError, match="FROM < TO"):
        funnel_query(
            FunnelSpec((Step("a"), Step("b")), 60, FROM, TO, exclusions=(Exclusion.parse("x:2-2"),))
        )
    with pytest.raises(QueryError, match="expected event"):
        Exclusion.parse("remove_from_cart")


@pytest.mark.unit
def test_options_sql_matches_the_golden_file() -> None:
    funnel = FunnelSpec(
        (Step.parse("view_item[channel in web|app]"), Step.parse("purchase[value>=20]")),
        3600,
        FROM,
        TO,
        "utm_campaign",
        exclusions=(Exclusion.parse("remove_from_cart:1-2"),),
        interval="week",
        attribution="last",
    )
    query = funnel_query(funnel)
    path = GOLDEN / "options_exclusion_interval_attribution.sql"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(query.sql + "\n")
    assert query.sql + "\n" == path.read_text()
    assert "remove_from_cart" not in query.sql and "utm_campaign" not in query.sql


@pytest.mark.integration
def test_filter_operators_on_chdb(ch: Client) -> None:
    def buy(eid: str, person: str, channel: str, value: float, **props: object) -> EventRow:
        r = row(eid, person, T0 + 1000, "purchase", channel, props=props)
        return dataclasses.replace(r, value=value)

    store(
        ch,
        [
            row("v1", "p1", T0, "view_item"),
            buy("b1", "p1", "web", 80.0, category="shoes", items=1),
            row("v2", "p2", T0, "view_item"),
            buy("b2", "p2", "store", 15.0, category="bags", items=4),
            row("v3", "p3", T0, "view_item"),
            buy("b3", "p3", "app", 50.0, category="hats"),
        ],
    )
    cases = {
        "purchase[channel!=store]": 2,
        "purchase[channel in web|store]": 2,
        "purchase[value>50]": 1,
        "purchase[value>=50]": 2,
        "purchase[value<20]": 1,
        "purchase[properties.category in shoes|bags]": 2,
        "purchase[properties.category!=hats]": 2,
        "purchase[properties.items<3]": 1,  # p3 has no items: not "< 3"
        "purchase[properties.items>0,channel=web]": 1,
    }
    for step, converted in cases.items():
        assert levels(ch, spec(["view_item", step])) == [3, converted], step


def _random_events(seed: int) -> list[tuple[str, int, str]]:
    rng = random.Random(seed)
    types = ["view_item", "add_to_cart", "remove_from_cart", "begin_checkout", "purchase"]
    events = []
    for p in range(120):
        ts = T0 + rng.randrange(0, 10 * DAY)
        for _ in range(rng.randint(1, 20)):
            ts += rng.randint(1, 10 * 60_000)
            events.append((f"c{p}", ts, rng.choice(types)))
    return events


@pytest.mark.integration
@pytest.mark.parametrize("seed", [1, 2])
def test_exclusions_and_entry_cohorts_match_the_reference(ch: Client, seed: int) -> None:
    """Exclusion `remove_from_cart:2-3`: a chain steps 1-2, the removal, step 3 in the window
    caps the person at step 2; per day of entry, the reference's levels of that day's persons."""
    events = _random_events(seed)
    store(ch, [row(f"e{i}", p, ts, et) for i, (p, ts, et) in enumerate(events)])
    steps = ["view_item", "add_to_cart", "begin_checkout", "purchase"]
    window, start, end = 3600_000, T0, T0 + 12 * DAY
    plain = reference_levels(events, steps, window, start, end)
    chain = reference_levels(events, [*steps[:2], "remove_from_cart", steps[2]], window, start, end)
    expected = {p: (min(v, 2) if chain.get(p, 0) >= 4 else v) for p, v in plain.items()}
    assert expected != plain, "the data should exercise the exclusion"
    date_from = datetime.fromtimestamp(start / 1000, UTC)
    date_to = datetime.fromtimestamp(end / 1000, UTC)
    funnel = FunnelSpec(
        tuple(Step(s) for s in steps),
        3600,
        date_from,
        date_to,
        exclusions=(Exclusion.parse("remove_from_cart:2-3"),),
    )
    assert levels(ch, funnel) == [sum(v >= k for v in expected.values()) for k in range(1, 5)]

    entry: dict[str, object] = {}
    for p, ts, et in sorted(events, key=lambda e: e[1]):
        if et == "view_item" and start <= ts < end:
            entry.setdefault(p, datetime.fromtimestamp(ts / 1000, UTC).date())
    by_day = FunnelSpec(tuple(Step(s) for s in steps), 3600, date_from, date_to, interval="day")
    got: Counter[tuple[object, int]] = Counter()
    for r in funnel_rows(by_day, run_query(ch, funnel_query(by_day))):
        got[(r.period, r.step)] += r.persons
    want: Counter[tuple[object, int]] = Counter()
    for p, level in plain.items():
        for k in range(1, 5):
            want[(entry[p], k)] += level >= k
    assert +got == +want
    weekly = FunnelSpec(tuple(Step(s) for s in steps), 3600, date_from, date_to, interval="week")
    weeks = {r.period for r in funnel_rows(weekly, run_query(ch, funnel_query(weekly)))}
    assert weeks and all(w is not None and w.weekday() == 0 for w in weeks)


@pytest.mark.integration
def test_first_and_last_touch_attribution(ch: Client) -> None:
    """Léa came from a newsletter two days before the range, then from a Google ad on the day;
    Tom has no campaign; Ana's tag comes after her entry (it brought her back, not in)."""

    def visit(eid: str, person: str, ts: int, source: str) -> EventRow:
        return row(eid, person, ts, "page_view", props={"utm_source": source})

    store(
        ch,
        [
            visit("l0", "lea", T0 - 2 * DAY, "newsletter"),
            visit("l1", "lea", T0 + 1000, "google"),
            row("l2", "lea", T0 + 2000, "view_item"),
            row("l3", "lea", T0 + 3000, "purchase"),
            row("t1", "tom", T0 + 1000, "view_item"),
            row("a1", "ana", T0 + 1000, "view_item"),
            visit("a2", "ana", T0 + 5000, "instagram"),
            row("a3", "ana", T0 + 6000, "purchase"),
            visit("old", "ana", T0 - 40 * DAY, "tv"),  # beyond the 30-day lookback
        ],
    )
    for attribution, lea in (("first", "newsletter"), ("last", "google")):
        funnel = FunnelSpec(
            (Step("view_item"), Step("purchase")),
            3600,
            FROM,
            TO,
            "utm_source",
            attribution=attribution,
        )
        rows = funnel_rows(funnel, run_query(ch, funnel_query(funnel)))
        assert {(r.breakdown, r.step, r.persons) for r in rows} == {
            (lea, 1, 1),
            (lea, 2, 1),
            ("(none)", 1, 2),
            ("(none)", 2, 1),
        }, attribution
    strict = FunnelSpec((Step("view_item"), Step("purchase")), 3600, FROM, TO, "utm_source", True)
    # the tagged page views are no step: Léa's strict chain is unbroken
    assert sorted(levels(ch, strict)) == [1, 1, 1, 2]


@pytest.mark.integration
def test_an_exclusion_does_not_break_a_strict_funnel(ch: Client) -> None:
    store(
        ch,
        [
            row("a", "p1", T0, "view_item"),
            row("b", "p1", T0 + 10, "help_opened"),
            row("c", "p1", T0 + 20, "purchase"),
        ],
    )
    funnel = FunnelSpec(
        (Step("view_item"), Step("purchase")),
        3600,
        FROM,
        TO,
        strict_order=True,
        exclusions=(Exclusion.parse("remove_from_cart:1-2"),),
    )
    assert levels(ch, funnel) == [1, 1]
    excluded = FunnelSpec(
        (Step("view_item"), Step("purchase")),
        3600,
        FROM,
        TO,
        exclusions=(Exclusion.parse("help_opened:1-2"),),
    )
    assert levels(ch, excluded) == [1, 0]
