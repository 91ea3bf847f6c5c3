"""Where the embedded runner keeps its journey state between runs: a table of the database.

Intuition: `parcours ingest a.jsonl` then `parcours ingest b.jsonl` must give the tables of one
run over both files, so the second run has to start from the state the first one ended in. That
state is saved in the database the tables are in (`journey_state`, infra/clickhouse/0004_...),
as one row per save, and the newest row is read back at the start of a run. One row is one
insert, so a save is all or nothing: a run killed at any moment leaves the previous save
whole. The runner saves only after the sink has written every row produced so far
(`EmbeddedRunner.checkpoint`), so the state is never ahead of the tables: what a killed run had
not saved is simply read and processed again, and the rows it writes again carry the same ids.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from clickhouse_connect.driver.client import Client

from streams.errors import ParcoursError

#: The row name of the embedded journey's state (one per database).
NAME = "embedded"


class JourneyStateError(ParcoursError):
    """The saved journey state cannot be read or written."""


class JourneyStateStore:
    """Reads and writes the newest saved journey state of one database."""

    def __init__(self, client: Client, name: str = NAME) -> None:
        self.client = client
        self.name = name
        self._seq: int | None = None

    def load(self) -> dict[str, Any] | None:
        """The newest saved state, or None when nothing was saved yet."""
        try:
            rows = self.client.query(
                "SELECT seq, state FROM journey_state WHERE name = {name:String} "
                "ORDER BY seq DESC LIMIT 1",
                parameters={"name": self.name},
            ).result_rows
        except Exception as exc:
            raise JourneyStateError(f"cannot read the saved journey state: {exc}") from exc
        if not rows:
            return None
        seq, raw = rows[0]
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise JourneyStateError(
                f"the saved journey state (save {seq}) is corrupt: {exc}"
            ) from exc
        if not isinstance(data, dict):
            raise JourneyStateError(f"the saved journey state (save {seq}) is not an object")
        return data

    def save(self, data: dict[str, Any], format_version: int) -> int:
        """Write `data` as the newest state; returns its sequence number. Older saves are
        superseded (ReplacingMergeTree keeps the highest `seq` when it merges)."""
        try:
            if self._seq is None:
                self._seq = int(
                    self.client.query(
                        "SELECT max(seq) FROM journey_state WHERE name = {name:String}",
                        parameters={"name": self.name},
                    ).result_rows[0][0]
                )
            seq = self._seq + 1
            self.client.insert(
                "journey_state",
                [[self.name, seq, int(time.time() * 1000), format_version, orjson.dumps(data)]],
                column_names=["name", "seq", "saved_at", "format", "state"],
                settings={"insert_deduplication_token": f"journey_state/{self.name}/{seq}"},
            )
        except Exception as exc:
            raise JourneyStateError(f"cannot save the journey state: {exc}") from exc
        self._seq = seq
        return seq
