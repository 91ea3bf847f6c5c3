"""The privacy package's one exception root."""

from __future__ import annotations

from streams.errors import ParcoursError


class PrivacyError(ParcoursError):
    """A privacy operation cannot be done as asked (a missing key, a bad setting): permanent,
    the operator has to change something; retrying does not help."""
