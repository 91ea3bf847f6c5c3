"""Revenue per channel, over simulated traffic, against a computation from the input file.

The oracle decodes the simulated file itself (no core code), keeps each event id once and sums
purchase values by the channel the purchase was made on: that is what `kpi conversion` must
report, and the channels' revenues add up to the total sold, which crediting a session's whole
revenue to every channel it touched did not.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from streams.queries.kpi import kpi_query
from streams.queries.query import run_query
from tests.embedded.test_ingest_end_to_end import ingest, simulate, valid_events
from tests.queries.test_kpi import FROM

pytestmark = pytest.mark.integration


def test_revenue_per_channel_is_that_of_the_purchases_made_on_it(
    tmp_path: Path, ch: Client
) -> None:
    path = simulate(tmp_path)
    ingest(path, ch)
    purchases = [e for e in valid_events(path) if e.event_type == "purchase"]
    transactions = [e.properties.get("transaction_id") for e in purchases]
    # The simulator re-sends messages (same event id), never a receipt under a new id: no
    # purchase here is a `duplicate_transaction` copy, so every one counts.
    assert len(set(transactions)) == len(transactions)
    expected: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for e in purchases:
        expected[e.channel] += float(e.properties.get("value") or 0.0)
        counts[e.channel] += 1
    assert len(expected) >= 2, "the simulation should sell on several channels"

    to = max(e.occurred_at for e in purchases).replace(year=2100)
    result = run_query(ch, kpi_query("conversion", FROM, to)).records()
    got = {r["channel"]: r for r in result}
    for channel, revenue in expected.items():
        assert got[channel]["revenue"] == pytest.approx(round(revenue, 2)), channel
        assert got[channel]["purchases"] == counts[channel], channel
    sold = ch.query(
        "SELECT sum(amount) FROM events_per_minute WHERE metric = 'revenue'"
    ).result_rows[0][0]
    assert sum(float(r["revenue"]) for r in result) == pytest.approx(sold, abs=0.01 * len(result))
    # Sessions touching a channel overlap (an omnichannel session counts on each channel).
    sessions = ch.query("SELECT uniqExact(session_id) FROM sessions FINAL").result_rows[0][0]
    assert sum(int(r["sessions_touching"]) for r in result) >= sessions
