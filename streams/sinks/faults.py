"""Telling a transient ClickHouse failure from a permanent one, and what a refused row becomes.

Intuition: retrying only helps when the failure is about the moment, not about the rows. A
server that is down, a timeout, too many parts or a memory limit will pass; a row ClickHouse
cannot parse, or a value the client cannot serialise, fails the same way on every attempt.
Retrying a permanent failure stops the pipeline for good (issue 12: one non-UTF-8 byte made the
sink retry forever), so a permanent failure is narrowed down to the rows that cause it, and
those go to `quarantined_rows` with the error; everything else is written.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import orjson
from clickhouse_connect.driver.exceptions import (
    DatabaseError,
    DataError,
    OperationalError,
    ProgrammingError,
)

#: ClickHouse error codes that are about the moment, not the data: retry them.
TRANSIENT_CODES = frozenset(
    {
        3,  # UNEXPECTED_END_OF_FILE (connection cut mid-insert)
        159,  # TIMEOUT_EXCEEDED
        164,  # READONLY (a replica in read-only mode for a while)
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        203,  # NO_FREE_CONNECTION
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY
        252,  # TOO_MANY_PARTS
        285,  # TOO_FEW_LIVE_REPLICAS
        319,  # UNKNOWN_STATUS_OF_INSERT
        394,  # QUERY_WAS_CANCELLED
        425,  # SYSTEM_ERROR
        999,  # KEEPER_EXCEPTION
    }
)
_CODE = re.compile(r"Code:\s*(\d+)")


def is_permanent(exc: BaseException) -> bool:
    """Whether the same insert would fail again (bad rows), as opposed to a passing fault.

    Client-side serialisation errors (a value of the wrong type, text that is not encodable)
    and server errors about the data are permanent; connection failures, timeouts and the
    server's load-shedding codes are transient. An unknown error is taken as transient: a
    retry costs time, a wrong quarantine costs a row in the wrong table."""
    if isinstance(exc, TypeError | ValueError | OverflowError | UnicodeError):
        return True
    if isinstance(exc, OperationalError | TimeoutError | ConnectionError | OSError):
        return False
    if isinstance(exc, DataError | ProgrammingError):
        return True
    if isinstance(exc, DatabaseError):
        match = _CODE.search(str(exc))
        return match is not None and int(match.group(1)) not in TRANSIENT_CODES
    return False


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode()}
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, float) and value != value:
        return None
    return value if isinstance(value, int | float | bool) or value is None else str(value)


def row_as_json(row: tuple[Any, ...], columns: list[str]) -> str:
    """A refused row as JSON text, whatever it holds (bytes as base64, broken text replaced):
    the quarantine must accept what the table refused."""
    doc = {name: _jsonable(value) for name, value in zip(columns, row, strict=False)}
    return orjson.dumps(doc, default=str).decode()


def error_text(exc: BaseException) -> str:
    """One line, valid UTF-8, bounded: what is stored next to a quarantined row."""
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")[:2000]
