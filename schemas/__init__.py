"""Parcours event contract, version 1: the validated `Event` and the decoder that makes one.

`decode(raw, topic)` turns a message into events or rejections and never raises. Producers in
other languages use the JSON Schema files in `schemas/json/`.
"""

from schemas.decode import Rejection, RejectReason, decode
from schemas.errors import SchemaError
from schemas.event import TOPIC_CHANNELS, Channel, Event, datetime_to_ms, ms_to_datetime

__all__ = [
    "TOPIC_CHANNELS",
    "Channel",
    "Event",
    "RejectReason",
    "Rejection",
    "SchemaError",
    "datetime_to_ms",
    "decode",
    "ms_to_datetime",
]
