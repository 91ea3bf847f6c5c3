"""Funnels on chDB: against a pure-Python reference, golden SQL, breakdowns, strict order."""

from __future__ import annotations

import itertools
import os
import random
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from streams.core.records import EventRow, IdentityLink, Record
from streams.queries.funnel import FunnelSpec, Step, funnel_query, funnel_result, funnel_rows
from streams.queries.query import QueryError, run_query
from streams.sinks.clickhouse import ClickHouseSink
from tests.queries.funnel_oracle import reference_levels, reference_levels_strict

GOLDEN = Path(__file__).parent / "golden"
T0 = int(datetime(2026, 11, 2, tzinfo=UTC).timestamp() * 1000)
FROM, TO = datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC)


def row(
    event_id: str,
    person: str,
    ts: int,
    event_type: str,
    channel: str = "web",
    *,
    device: str | None = None,
    device_type: str | None = None,
    anonymous: bool = False,
    props: dict[str, object] | None = None,
) -> EventRow:
    return EventRow(
        event_id,
        event_type,
        ts,
        ts,
        channel,
        device,
        device_type,
        None if anonymous else person,
        person,
        "s",
        None,
        None,
        None,
        None,
        props or {},
        False,
    )


def store(client: Client, rows: Sequence[Record], batch_rows: int = 50_000) -> None:
    sink = ClickHouseSink(client, batch_rows=batch_rows, flush_interval_s=None)
    sink.add(rows)
    sink.flush()


def spec(steps: list[str], window_s: int = 3600, **kw: object) -> FunnelSpec:
    return FunnelSpec(tuple(Step.parse(s) for s in steps), window_s, FROM, TO, **kw)  # type: ignore[arg-type]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("name", "funnel"),
    [
        (
            "four_steps_by_channel",
            spec(["view_item", "add_to_cart", "begin_checkout", "purchase"], breakdown="channel"),
        ),
        (
            "filtered_steps_strict_by_property",
            spec(
                ["page_view[channel=web]", "purchase[channel=store,properties.coupon=XMAS]"],
                7200,
                breakdown="property:utm_source",
                strict_order=True,
            ),
        ),
    ],
)
def test_generated_sql_matches_the_golden_file(name: str, funnel: FunnelSpec) -> None:
    query = funnel_query(funnel)
    path = GOLDEN / f"{name}.sql"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(query.sql + "\n")
    assert query.sql + "\n" == path.read_text()
    assert "XMAS" not in query.sql and "utm_source" not in query.sql  # values travel as parameters


@pytest.mark.unit
def test_bad_funnels_are_refused() -> None:
    with pytest.raises(QueryError):
        funnel_query(spec(["view_item"]))
    with pytest.raises(QueryError, match="cannot filter"):
        funnel_query(spec(["view_item[person_id=x]", "purchase"]))
    with pytest.raises(QueryError, match="breakdown"):
        funnel_query(spec(["view_item", "purchase"], breakdown="colour"))
    with pytest.raises(QueryError):
        Step.parse("view item")


@pytest.mark.integration
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_funnel_matches_the_reference_on_random_journeys(ch: Client, seed: int) -> None:
    rng = random.Random(seed)
    types = ["view_item", "add_to_cart", "begin_checkout", "purchase", "page_view"]
    events = []
    for p in range(150):
        ts = T0 + rng.randrange(0, 20 * 3600_000)
        for _ in range(rng.randint(1, 12)):
            ts += rng.randint(1, 40 * 60_000)  # distinct, increasing times per person
            events.append((f"c{p}", ts, rng.choice(types)))
    stored = [row(f"e{i}", p, ts, et) for i, (p, ts, et) in enumerate(events)]
    # A replay cut into other batches (other insert tokens) leaves real duplicate rows until a
    # merge: the funnel must not see them. Merges are stopped so that the duplicates stay.
    ch.command("SYSTEM STOP MERGES events")
    store(ch, stored)
    store(ch, stored, batch_rows=97)
    assert ch.query("SELECT count() FROM events").result_rows == [(2 * len(events),)]
    steps = ["view_item", "add_to_cart", "begin_checkout", "purchase"]
    for window_s, strict in itertools.product((600, 3600, 4 * 3600), (False, True)):
        funnel = spec(steps, window_s, strict_order=strict)
        result = funnel_rows(funnel, run_query(ch, funnel_query(funnel)))
        oracle = reference_levels_strict if strict else reference_levels
        levels = oracle(events, steps, window_s * 1000, T0, T0 + 86_400_000)
        expected = [sum(1 for v in levels.values() if v >= k) for k in range(1, 5)]
        assert [r.persons for r in result] == expected, (window_s, strict)


@pytest.mark.integration
def test_persons_are_resolved_through_identity_links(ch: Client) -> None:
    """Browsed the app anonymously, bought on the web logged in: one person, converted."""
    store(
        ch,
        [
            row("e1", "anon:a1", T0, "view_item", "app", device="a1", anonymous=True),
            IdentityLink("a1", "c1", T0 + 60_000, 30 * 86_400_000),
            row("e2", "c1", T0 + 120_000, "add_to_cart", device="w1"),
            row("e3", "c1", T0 + 300_000, "purchase", device="w1"),
        ],
    )
    funnel = spec(["view_item", "add_to_cart", "purchase"], breakdown="channel")
    rows = funnel_rows(funnel, run_query(ch, funnel_query(funnel)))
    assert [(r.breakdown, r.persons) for r in rows] == [("app", 1), ("app", 1), ("app", 1)]
    assert rows[2].median_seconds_from_entry == 300.0


@pytest.mark.integration
def test_breakdown_filters_entry_range_and_strict_order(ch: Client) -> None:
    store(
        ch,
        [
            row("a1", "p1", T0, "view_item", "web", device_type="mobile"),
            row("a2", "p1", T0 + 1000, "purchase", "web"),
            row("b1", "p2", T0, "view_item", "app", device_type="desktop"),
            row("b2", "p2", T0 + 1000, "add_to_cart", "app"),
            row("b3", "p2", T0 + 2000, "purchase", "store", props={"coupon": "XMAS"}),
            row("c1", "p3", T0 - 3600_000, "view_item", "web"),  # entry before the range
            row("c2", "p3", T0 + 1000, "purchase", "web"),
        ],
    )
    by_device = spec(["view_item", "purchase"], breakdown="device_type")
    rows = funnel_result(by_device, run_query(ch, funnel_query(by_device))).records()
    assert {(r["breakdown"], r["step"], r["persons"]) for r in rows} == {
        ("mobile", 1, 1),
        ("mobile", 2, 1),
        ("desktop", 1, 1),
        ("desktop", 2, 1),
    }
    store_coupon = spec(["view_item", "purchase[channel=store,properties.coupon=XMAS]"])
    assert [
        r.persons for r in funnel_rows(store_coupon, run_query(ch, funnel_query(store_coupon)))
    ] == [2, 1]
    loose = spec(["view_item", "purchase"])
    strict = spec(["view_item", "add_to_cart", "purchase"], strict_order=True)
    assert [r.persons for r in funnel_rows(loose, run_query(ch, funnel_query(loose)))] == [2, 2]
    # p2 goes view_item -> add_to_cart -> purchase in order; p1 skips add_to_cart
    assert [r.persons for r in funnel_rows(strict, run_query(ch, funnel_query(strict)))] == [
        2,
        1,
        1,
    ]
    purchase_first = spec(["view_item", "purchase", "add_to_cart"], strict_order=True)
    # p2: add_to_cart (a step event) intervenes between view_item and purchase -> level 1 only
    assert [
        r.persons for r in funnel_rows(purchase_first, run_query(ch, funnel_query(purchase_first)))
    ] == [2, 1, 0]


@pytest.mark.integration
def test_breakdown_by_a_property_on_chdb(ch: Client) -> None:
    """The breakdown value is the property of the person's first entry event in the range."""
    store(
        ch,
        [
            # p1 enters from the newsletter, comes back from an ad, buys: counted as newsletter
            row("a1", "p1", T0, "page_view", props={"utm_source": "newsletter"}),
            row("a2", "p1", T0 + 60_000, "page_view", props={"utm_source": "ads"}),
            row("a3", "p1", T0 + 120_000, "purchase"),
            row("b1", "p2", T0, "page_view", props={"utm_source": "ads"}),
            row("c1", "p3", T0, "page_view", props={"utm_source": "ads"}),
            row("c2", "p3", T0 + 90_000, "purchase"),
            row("d1", "p4", T0, "page_view"),  # no utm_source: ''
            # entered before the range with another source: the first entry *in the range* counts
            row("e0", "p5", T0 - 3600_000, "page_view", props={"utm_source": "ads"}),
            row("e1", "p5", T0 + 10_000, "page_view", props={"utm_source": "newsletter"}),
        ],
    )
    funnel = spec(["page_view", "purchase"], breakdown="property:utm_source")
    rows = funnel_rows(funnel, run_query(ch, funnel_query(funnel)))
    assert {(r.breakdown, r.step, r.persons) for r in rows} == {
        ("newsletter", 1, 2),
        ("newsletter", 2, 1),
        ("ads", 1, 2),
        ("ads", 2, 1),
        ("", 1, 1),
        ("", 2, 0),
    }


@pytest.mark.integration
def test_the_to_bound_applies_to_the_entry_only(ch: Client) -> None:
    """`--to` is exclusive on the entry step; later steps may fall after it, within the window."""
    end = TO  # T0 + 1 day
    end_ms = T0 + 86_400_000
    store(
        ch,
        [
            # enters 1 ms before --to, buys 30 min after it: counted, converted
            row("a1", "p1", end_ms - 1, "view_item"),
            row("a2", "p1", end_ms + 1_800_000, "purchase"),
            # enters exactly at --to: not counted at all
            row("b1", "p2", end_ms, "view_item"),
            row("b2", "p2", end_ms + 60_000, "purchase"),
            # enters before --to, buys after the window: entered, not converted
            row("c1", "p3", end_ms - 60_000, "view_item"),
            row("c2", "p3", end_ms - 60_000 + 3600_000 + 1, "purchase"),
        ],
    )
    funnel = FunnelSpec((Step("view_item"), Step("purchase")), 3600, FROM, end)
    rows = funnel_rows(funnel, run_query(ch, funnel_query(funnel)))
    assert [r.persons for r in rows] == [2, 1]
    earlier = FunnelSpec((Step("view_item"), Step("purchase")), 3600, FROM, end - (TO - FROM) / 2)
    assert funnel_rows(earlier, run_query(ch, funnel_query(earlier))) == []  # nobody entered
