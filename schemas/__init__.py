"""Parcours event contract, version 1: the validated `Event` and the decoder that makes one.

Producers in other languages use the JSON Schema files in `schemas/json/`.
"""

from schemas.event import TOPIC_CHANNELS, Channel, Event, datetime_to_ms, ms_to_datetime

__all__ = ["TOPIC_CHANNELS", "Channel", "Event", "datetime_to_ms", "ms_to_datetime"]
