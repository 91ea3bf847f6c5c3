"""The one-scan funnel gives exactly the answers of the funnel over `events_resolved`.

Persons are now resolved with one join to `person_overrides` (0008) instead of the resolved
view; the step times come from per-person lists instead of self-joins. These tests compare the
whole result (every breakdown, step count and median) with the former query kept in
`tests/queries/funnel_reference.py`, on random anonymous journeys whose devices log in later
(some to two customers, some links older than the device's first), on the stories around the
retro window, and on simulated traffic through the embedded pipeline.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from streams.core.records import EventRow, IdentityLink, Record
from streams.queries.funnel import FunnelSpec, Step, funnel_query, funnel_rows
from streams.queries.query import QueryResult, run_query
from tests.queries.funnel_reference import reference_funnel_query
from tests.queries.test_funnel import FROM, T0, TO, row, spec, store

pytestmark = pytest.mark.integration

DAY = 86_400_000
RETRO = 30 * DAY


def anon(event_id: str, device: str, ts: int, event_type: str, channel: str = "web") -> EventRow:
    return row(event_id, f"anon:{device}", ts, event_type, channel, device=device, anonymous=True)


def both(client: Client, funnel: FunnelSpec) -> tuple[QueryResult, QueryResult]:
    new = run_query(client, funnel_query(funnel))
    old = run_query(client, reference_funnel_query(funnel))
    return new, old


def same(new: QueryResult, old: QueryResult) -> None:
    assert new.columns == old.columns
    assert sorted(new.rows, key=repr) == sorted(old.rows, key=repr)


def test_a_login_after_the_events_re_attributes_them(ch: Client) -> None:
    """Browsed and filled a cart anonymously on the app; the login (a link written after those
    rows) and the purchase come later on the web: one person, converted, entered on the app."""
    store(
        ch,
        [
            anon("a1", "app-1", T0, "view_item", "app"),
            anon("a2", "app-1", T0 + 60_000, "add_to_cart", "app"),
            # before the retro window of the first login: stays anonymous, a person of its own
            anon("a0", "app-1", T0 - RETRO - 1, "view_item", "app"),
        ],
    )
    funnel = spec(["view_item", "add_to_cart", "purchase"], breakdown="channel")
    before = funnel_rows(funnel, run_query(ch, funnel_query(funnel)))
    assert [(r.breakdown, r.persons) for r in before] == [("app", 1), ("app", 1), ("app", 0)]
    store(
        ch,
        [
            IdentityLink("app-1", "c-lea", T0 + 600_000, RETRO),
            row("w1", "c-lea", T0 + 900_000, "purchase", "web", device="web-1"),
        ],
    )
    after = funnel_rows(funnel, run_query(ch, funnel_query(funnel)))
    assert [(r.breakdown, r.persons) for r in after] == [("app", 1), ("app", 1), ("app", 1)]
    assert after[2].median_seconds_from_entry == 900.0
    same(*both(ch, funnel))
    wide = FunnelSpec(funnel.steps, 3600, FROM.replace(month=9), TO, breakdown="channel")
    # a0 is in range now, and stays anon:app-1: a second person, who only viewed
    assert [r.persons for r in funnel_rows(wide, run_query(ch, funnel_query(wide)))] == [2, 1, 1]
    same(*both(ch, wide))


def test_a_device_that_changes_hands_follows_its_latest_link(ch: Client) -> None:
    store(
        ch,
        [
            IdentityLink("tab", "c-a", T0 + 1_000, RETRO),
            IdentityLink("tab", "c-b", T0 + 3 * 3600_000, RETRO),
            anon("t1", "tab", T0, "view_item"),  # retro: c-a
            anon("t2", "tab", T0 + 2_000, "purchase"),  # c-a
            anon("t3", "tab", T0 + 4 * 3600_000, "view_item"),  # c-b
            anon("t4", "tab", T0 + 4 * 3600_000 + 5, "purchase"),  # c-b
        ],
    )
    funnel = spec(["view_item", "purchase"])
    assert [r.persons for r in funnel_rows(funnel, run_query(ch, funnel_query(funnel)))] == [2, 2]
    same(*both(ch, funnel))


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_random_anonymous_journeys_give_the_former_answers(ch: Client, seed: int) -> None:
    rng = random.Random(seed)
    types = ["view_item", "add_to_cart", "begin_checkout", "purchase", "page_view"]
    channels = ["web", "app", "store"]
    records: list[Record] = []
    for d in range(60):
        device = f"d{d}"
        ts = T0 + rng.randrange(-40 * DAY, 20 * 3600_000)
        customers = [f"c{rng.randrange(25)}" for _ in range(rng.choice((0, 1, 1, 2)))]
        # one retro window per device (a setting; 0003's views take any of the device's)
        retro = rng.choice((RETRO, DAY, 0))
        for i in range(rng.randint(1, 14)):
            ts += rng.randint(1, 50 * 60_000) if rng.random() < 0.9 else rng.randint(0, 20 * DAY)
            kind, channel = rng.choice(types), rng.choice(channels)
            if customers and rng.random() < 0.3:  # logged in: names the customer
                customer = rng.choice(customers)
                records.append(row(f"{device}-{i}", customer, ts, kind, channel, device=device))
            else:
                records.append(anon(f"{device}-{i}", device, ts, kind, channel))
        for customer in customers:  # links written after the events, at any time of the span
            linked = T0 + rng.randrange(-10 * DAY, 20 * 3600_000)
            records.append(IdentityLink(device, customer, linked, retro))
    rng.shuffle(records)
    store(ch, records, batch_rows=37)
    steps = ["view_item", "add_to_cart", "begin_checkout", "purchase"]
    wide_from = FROM.replace(month=10)
    for window_s, strict, by in (
        (3600, False, "channel"),
        (4 * 3600, True, None),
        (2 * DAY // 1000, False, "device_type"),
    ):
        funnel = FunnelSpec(tuple(Step(s) for s in steps), window_s, wide_from, TO, by, strict)
        same(*both(ch, funnel))
    filtered = spec(["view_item[channel=app]", "purchase[channel=store]"])
    same(*both(ch, filtered))


def test_simulated_traffic_gives_the_former_answers(tmp_path: Path, ch: Client) -> None:
    from tests.embedded.test_ingest_end_to_end import ingest, simulate

    ingest(simulate(tmp_path), ch)
    assert ch.query("SELECT count() FROM identity_links").result_rows[0][0] > 0
    start = FROM.replace(month=10)
    end = TO.replace(year=2027)
    for steps, by in (
        (["view_item", "add_to_cart", "begin_checkout", "purchase"], "channel"),
        (["page_view", "purchase"], "device_type"),
    ):
        funnel = FunnelSpec(tuple(Step(s) for s in steps), 3600, start, end, by)
        new, old = both(ch, funnel)
        assert sum(r[1] for r in new.rows) > 10
        same(new, old)
