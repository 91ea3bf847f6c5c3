"""A simulated database for the report (three days, 1,000 customers, a payment outage: enough traffic for a friction spike), written
once per test session, and the report drawn from it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from clickhouse_connect.driver.client import Client

from streams.clickhouse.client import connect
from streams.clickhouse.migrations import apply_migrations
from streams.embedded.wiring import embedded_runner
from streams.report.build import Written, write_report
from streams.simulate import SimulationConfig, generate, parse_incident


@dataclass(frozen=True)
class Simulated:
    database: str
    client: Client


def simulate_into(client: Client, customers: int, days: float, seed: int) -> None:
    start = SimulationConfig().start
    outage = parse_incident("payment_outage:+1d18h:+1d22h", start)
    config = SimulationConfig(customers=customers, days=days, seed=seed, incidents=(outage,))
    runner = embedded_runner(client, batch_rows=50_000, resume=False)
    for position, msg in enumerate(generate(config), 1):
        value = msg.payload if isinstance(msg.payload, bytes) else orjson.dumps(msg.payload)
        runner.feed_message(msg.topic, value, f"simulate:{seed}", position)
    runner.finish()


@pytest.fixture(scope="session")
def simulated(chdb_dsn: str) -> Simulated:
    name = f"report{os.getpid()}"
    client = connect(chdb_dsn, name)
    apply_migrations(client)
    simulate_into(client, customers=1000, days=3, seed=7)
    return Simulated(name, client)


@pytest.fixture(scope="session")
def report(simulated: Simulated, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Written]:
    out = tmp_path_factory.mktemp("report") / "report.html"
    yield write_report(simulated.client, out)


@pytest.fixture
def report_path(report: Written) -> Path:
    return report.path
