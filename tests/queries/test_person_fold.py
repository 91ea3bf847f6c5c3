"""Folding the person overrides into the rows (0010) changes no funnel answer.

The compaction (`streams/clickhouse/person_fold.py`) rewrites each customer-less row that a
later link re-attributes under its resolved person and marks the parts folded. The funnel then
joins only the overrides still pending, or none. These tests compare, before and after folds,
the funnel with the join, without it once nothing is pending, and the former query over
`events_resolved` (`tests/queries/funnel_reference.py`): on the login that arrives after the
events it re-attributes, on random anonymous journeys whose devices log in later (some to two
customers, some links older than the device's first), and when new links and events arrive
after a fold.
"""

from __future__ import annotations

import random

import pytest
from clickhouse_connect.driver.client import Client

from streams.clickhouse.person_fold import fold_persons, has_pending_overrides
from streams.core.records import IdentityLink, Record
from streams.queries.funnel import Exclusion, FunnelSpec, Step, funnel_query, funnel_rows
from streams.queries.query import QueryResult, run_query
from tests.queries.funnel_reference import reference_funnel_query
from tests.queries.test_funnel import FROM, T0, TO, row, spec, store
from tests.queries.test_funnel_persons import DAY, RETRO, anon

pytestmark = pytest.mark.integration


def rows_of(result: QueryResult) -> list[tuple[object, ...]]:
    return sorted(result.rows, key=repr)


def check(client: Client, funnel: FunnelSpec) -> QueryResult:
    """The shipped funnel (with the join; without it when nothing is pending) equals the
    former query's answer."""
    expected = run_query(client, reference_funnel_query(funnel))
    joined = run_query(client, funnel_query(funnel))
    assert joined.columns == expected.columns
    assert rows_of(joined) == rows_of(expected)
    if not has_pending_overrides(client):
        alone = run_query(client, funnel_query(funnel, join_overrides=False))
        assert rows_of(alone) == rows_of(expected)
    return joined


def stored_person(client: Client, event_id: str) -> list[str]:
    result = client.query(
        "SELECT person_id FROM events WHERE event_id = {e:String} ORDER BY person_id",
        parameters={"e": event_id},
    )
    return [str(r[0]) for r in result.result_rows]


def test_a_login_after_the_events_is_folded_into_them(ch: Client) -> None:
    """Léa browsed and filled a cart anonymously on the app, then logged in and bought on the
    web: before the fold the join re-attributes the app rows, after it the rows carry c-lea."""
    store(
        ch,
        [
            anon("a1", "app-1", T0, "view_item", "app"),
            anon("a2", "app-1", T0 + 60_000, "add_to_cart", "app"),
            anon("a0", "app-1", T0 - RETRO - 1, "view_item", "app"),  # before the retro window
            IdentityLink("app-1", "c-lea", T0 + 600_000, RETRO),
            row("w1", "c-lea", T0 + 900_000, "purchase", "web", device="web-1"),
        ],
    )
    funnel = spec(["view_item", "add_to_cart", "purchase"], breakdown="channel")
    assert has_pending_overrides(ch)
    before = funnel_rows(funnel, check(ch, funnel))
    stats = fold_persons(ch)
    assert stats.rows_rewritten == 2
    assert not has_pending_overrides(ch)
    assert stored_person(ch, "a1") == ["c-lea"] and stored_person(ch, "a2") == ["c-lea"]
    assert stored_person(ch, "a0") == ["anon:app-1"]  # outside the window: stays anonymous
    after = funnel_rows(funnel, check(ch, funnel))
    assert after == before
    assert [(r.breakdown, r.persons) for r in after] == [("app", 1), ("app", 1), ("app", 1)]
    assert fold_persons(ch).rows_rewritten == 0  # idempotent


def test_a_link_and_events_written_after_a_fold_are_joined_until_the_next_fold(
    ch: Client,
) -> None:
    store(ch, [anon("t1", "tab", T0, "view_item"), anon("t2", "tab", T0 + 5_000, "add_to_cart")])
    fold_persons(ch)  # nothing to rewrite: the device has no link yet
    assert not has_pending_overrides(ch)
    funnel = spec(["view_item", "add_to_cart", "purchase"])
    assert [r.persons for r in funnel_rows(funnel, check(ch, funnel))] == [1, 1, 0]
    # the owner logs in an hour later and buys: the earlier rows become hers
    store(
        ch,
        [
            IdentityLink("tab", "c-b", T0 + 3600_000, RETRO),
            row("t3", "c-b", T0 + 1_800_000, "purchase", device="tab"),
        ],
    )
    assert has_pending_overrides(ch)
    pending = funnel_rows(funnel, check(ch, funnel))
    assert [r.persons for r in pending] == [1, 1, 1]
    fold_persons(ch)
    assert not has_pending_overrides(ch)
    assert funnel_rows(funnel, check(ch, funnel)) == pending
    # a late anonymous event of the device, written after the fold, is joined again
    store(ch, [anon("t0", "tab", T0 - 60_000, "view_item")])
    assert has_pending_overrides(ch)
    check(ch, funnel)
    fold_persons(ch)
    assert stored_person(ch, "t0") == ["c-b"]
    check(ch, funnel)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_journeys_give_the_same_answers_before_and_after_folds(
    ch: Client, seed: int
) -> None:
    """Rows and links arrive in shuffled batches with a fold after the first half: every
    funnel equals the former query at each stage."""
    rng = random.Random(seed)
    types = ["view_item", "add_to_cart", "begin_checkout", "purchase", "page_view"]
    records: list[Record] = []
    for d in range(50):
        device = f"d{d}"
        ts = T0 + rng.randrange(-40 * DAY, 20 * 3600_000)
        customers = [f"c{rng.randrange(20)}" for _ in range(rng.choice((0, 1, 1, 2)))]
        retro = rng.choice((RETRO, DAY, 0))
        for i in range(rng.randint(1, 12)):
            ts += rng.randint(1, 50 * 60_000) if rng.random() < 0.9 else rng.randint(0, 20 * DAY)
            kind, channel = rng.choice(types), rng.choice(("web", "app", "store"))
            if customers and rng.random() < 0.3:
                tag = {"utm_source": rng.choice(("mail", "ads"))} if rng.random() < 0.4 else None
                records.append(
                    row(
                        f"{device}-{i}",
                        rng.choice(customers),
                        ts,
                        kind,
                        channel,
                        device=device,
                        props=tag,
                    )
                )
            else:
                records.append(anon(f"{device}-{i}", device, ts, kind, channel))
        for customer in customers:
            linked = T0 + rng.randrange(-10 * DAY, 20 * 3600_000)
            records.append(IdentityLink(device, customer, linked, retro))
    rng.shuffle(records)
    half = len(records) // 2
    steps = tuple(Step(s) for s in ("view_item", "add_to_cart", "begin_checkout", "purchase"))
    funnels = [
        FunnelSpec(steps, 3600, FROM.replace(month=10), TO, "channel"),
        FunnelSpec(steps, 4 * 3600, FROM.replace(month=10), TO, None, True),
        spec(["view_item[channel=app]", "purchase[channel=store]"]),
    ]
    options = [
        FunnelSpec(
            steps,
            3600,
            FROM.replace(month=10),
            TO,
            "utm_source",
            exclusions=(Exclusion(Step("page_view"), 2, 3),),
            interval="day",
            attribution="last",
        ),
        FunnelSpec(steps[:3], 7200, FROM.replace(month=10), TO, "device_type", interval="week"),
    ]
    store(ch, records[:half], batch_rows=29)
    fold_persons(ch)
    for funnel in funnels:
        check(ch, funnel)
    store(ch, records[half:], batch_rows=31)
    for funnel in funnels:
        check(ch, funnel)
    fold_persons(ch)
    assert not has_pending_overrides(ch)
    for funnel in funnels:
        check(ch, funnel)
    for funnel in options:  # the options' SQL without the join gives the joined answer
        joined = run_query(ch, funnel_query(funnel))
        alone = run_query(ch, funnel_query(funnel, join_overrides=False))
        assert rows_of(alone) == rows_of(joined)
    assert fold_persons(ch).rows_rewritten == 0


def test_the_work_table_is_empty_after_a_fold(ch: Client) -> None:
    """It names persons: an erasure must not have to look there."""
    store(
        ch,
        [
            anon("a1", "app-1", T0, "view_item", "app"),
            IdentityLink("app-1", "c-lea", T0 + 600_000, RETRO),
        ],
    )
    assert fold_persons(ch).rows_rewritten == 1
    assert ch.query("SELECT count() FROM person_fold_work").result_rows[0][0] == 0
