"""Entry point of the `parcours` command: imports every command module so they register."""

from __future__ import annotations

from streams.cli import compact_cmd as compact_cmd
from streams.cli import config_cmd as config_cmd
from streams.cli import demo_cmd as demo_cmd
from streams.cli import ingest_cmd as ingest_cmd
from streams.cli import paths_cmd as paths_cmd
from streams.cli import person_cmd as person_cmd
from streams.cli import privacy_cmds as privacy_cmds
from streams.cli import query_cmds as query_cmds
from streams.cli import report_cmd as report_cmd
from streams.cli import retention_cmd as retention_cmd
from streams.cli import schema_cmd as schema_cmd
from streams.cli import simulate_cmd as simulate_cmd
from streams.cli import spikes_cmd as spikes_cmd
from streams.cli import stream_cmds as stream_cmds
from streams.cli import touchpoints_cmd as touchpoints_cmd
from streams.cli.app import app

__all__ = [
    "app",
    "compact_cmd",
    "config_cmd",
    "demo_cmd",
    "ingest_cmd",
    "paths_cmd",
    "person_cmd",
    "privacy_cmds",
    "query_cmds",
    "report_cmd",
    "retention_cmd",
    "schema_cmd",
    "simulate_cmd",
    "spikes_cmd",
    "stream_cmds",
    "touchpoints_cmd",
]

if __name__ == "__main__":
    app()
