"""Friction spikes as analysts read them: the `friction_spikes` table, newest version of each.

A spike overlaps the period asked when it started before its end and ended after its start,
so a spike that began yesterday evening and is still open shows up in today's list. A spike
of one device type (`device_type` not '') is listed beside its channel's (`device_type` '').
"""

from __future__ import annotations

from datetime import datetime
from typing import get_args

from schemas.properties import DeviceType
from streams.core.friction import SIGNAL_TYPES
from streams.core.spike_tracker import SPIKE_CHANNELS
from streams.queries.query import Query, QueryError

DEVICE_TYPES: tuple[str, ...] = get_args(DeviceType)


def spikes_query(
    date_from: datetime,
    date_to: datetime,
    signal_type: str | None = None,
    channel: str | None = None,
    device_type: str | None = None,
) -> Query:
    """Spikes overlapping [date_from, date_to), oldest first (`device_type` '': the channel's
    every device together only)."""
    params: dict[str, object] = {"date_from": date_from, "date_to": date_to}
    filters = ""
    if signal_type is not None:
        if signal_type not in SIGNAL_TYPES:
            raise QueryError(
                f"unknown friction type {signal_type!r}; one of {', '.join(SIGNAL_TYPES)}"
            )
        params["signal_type"] = signal_type
        filters += " AND type = {signal_type:String}"
    if channel is not None:
        if channel not in SPIKE_CHANNELS:
            raise QueryError(f"unknown channel {channel!r}; one of {', '.join(SPIKE_CHANNELS)}")
        params["channel"] = channel
        filters += " AND channel = {channel:String}"
    if device_type is not None:
        if device_type and device_type not in DEVICE_TYPES:
            raise QueryError(
                f"unknown device type {device_type!r}; one of {', '.join(DEVICE_TYPES)}"
            )
        params["device_type"] = device_type
        filters += " AND device_type = {device_type:String}"
    return Query(
        f"""SELECT
    type,
    channel,
    device_type,
    started_at,
    ended_at,
    round(dateDiff('second', started_at, ended_at) / 60) AS minutes,
    round(observed * 100, 3) AS observed_pct,
    round(expected * 100, 3) AS expected_pct,
    ratio,
    score,
    signals,
    expected_signals,
    status
FROM friction_spikes FINAL
WHERE started_at < {{date_to:DateTime64(3)}} AND ended_at > {{date_from:DateTime64(3)}}{filters}
ORDER BY started_at, type, channel, device_type""",
        params,
    )
