"""The privacy package's one exception root."""

from __future__ import annotations

from streams.errors import ParcoursError


class PrivacyError(ParcoursError):
    """A privacy operation cannot be done as asked (a missing key, a bad setting): permanent,
    the operator has to change something; retrying does not help."""


class PrivacyUnavailable(PrivacyError):
    """What an erasure or a suppression needs cannot be reached now (Kafka, ClickHouse):
    transient, the same command run again later completes it."""
