"""A receipt re-sent under a new event id, through the embedded runner into chDB: stored once
as a purchase and once flagged, counted once by the shipped funnel and KPI, and by the metric."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from clickhouse_connect.driver.client import Client

from streams import metrics
from streams.queries.funnel import FunnelSpec, Step, funnel_query, funnel_rows
from streams.queries.kpi import kpi_query
from streams.queries.query import run_query
from tests.embedded.chdb_runner import run_embedded
from tests.journeys.outcome import check
from tests.journeys.transaction_stories import TRANSACTION_STORIES

pytestmark = pytest.mark.integration

FROM, TO = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 5, tzinfo=UTC)
STORY = next(s for s in TRANSACTION_STORIES if s.name.endswith("under_a_new_id_counts_once"))


def _copies_counted(channel: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "parcours_duplicate_transactions_total", {"channel": channel}
    )
    return value or 0.0


def test_a_re_sent_receipt_is_stored_flagged_and_counted_once(ch: Client) -> None:
    before = _copies_counted("store")
    check(STORY, run_embedded(STORY, ch))
    assert _copies_counted("store") - before == 1

    rows = ch.query(
        "SELECT event_id, duplicate_transaction FROM events WHERE event_type = 'purchase' "
        "ORDER BY event_id"
    ).result_rows
    assert rows == [("pos-1", False), ("pos-1-reexport", True)]
    flagged = ch.query(
        "SELECT event_id FROM events_resolved WHERE duplicate_transaction"
    ).result_rows
    assert flagged == [("pos-1-reexport",)]

    spec = FunnelSpec((Step("store_visit"), Step("purchase")), 3_600, FROM, TO)
    levels = [r.persons for r in funnel_rows(spec, run_query(ch, funnel_query(spec)))]
    assert levels == [1, 1]

    (conversion,) = run_query(ch, kpi_query("conversion", FROM, TO)).records()
    assert conversion["converted_sessions_touching"] == 1 and conversion["revenue"] == 50.0


def test_a_copy_is_no_funnel_step(ch: Client) -> None:
    """Ordered web purchase, then a checkout begun and abandoned, then the order re-sent: the
    copy after the checkout would complete a checkout -> purchase funnel that nobody did."""
    story = next(s for s in TRANSACTION_STORIES if s.name.startswith("web_order_re_sent_min"))
    check(story, run_embedded(story, ch))
    spec = FunnelSpec((Step("begin_checkout"), Step("purchase")), 3_600, FROM, TO)
    levels = [r.persons for r in funnel_rows(spec, run_query(ch, funnel_query(spec)))]
    assert levels == [1, 0]
