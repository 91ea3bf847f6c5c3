"""Keyed hashes: pseudonyms for ids, and the hashes that name an erased subject.

Intuition: a plain hash of an email is not anonymous (hash every email of a customer file and
compare), so every hash here is *keyed* (BLAKE2b with a secret key): without the key nobody can
tell whose hash it is, and with it Parcours can recognise the same id again. Two uses, kept
apart by BLAKE2b's personalisation so one hash can never be taken for the other:

- a **pseudonym** replaces `customer_id` / `device_id` at decode (`p_` + 32 hex digits): the
  same id always gets the same pseudonym, so identity stitching works on them unchanged;
- a **subject hash** names who was erased, in the audit table and on the suppression list.

The key object never shows its bytes (`repr`, `str`, f-strings): it cannot reach a log line, an
error message or a table by accident. Pure: no I/O (streams/privacy/settings.py finds the key).
"""

from __future__ import annotations

import hashlib
from typing import Literal

SubjectKind = Literal["customer", "device"]
PSEUDONYM_PREFIX = "p_"


class PrivacyKey:
    """A secret key, reduced to 32 bytes (SHA-256 of what was given)."""

    __slots__ = ("_key",)

    def __init__(self, secret: str | bytes) -> None:
        raw = secret.encode() if isinstance(secret, str) else secret
        if not raw:
            raise ValueError("the privacy key must not be empty")
        self._key = hashlib.sha256(raw).digest()

    def __repr__(self) -> str:
        return "PrivacyKey(***)"

    __str__ = __repr__

    def pseudonym(self, value: str) -> str:
        """The pseudonym of an id: `p_` + 32 hex digits (fits the contract's 128 characters)."""
        digest = hashlib.blake2b(
            value.encode(), key=self._key, digest_size=16, person=b"parcours-pseudo"
        )
        return PSEUDONYM_PREFIX + digest.hexdigest()

    def subject(self, kind: SubjectKind, value: str) -> str:
        """The hash that names an erased customer or device (40 hex digits)."""
        digest = hashlib.blake2b(
            f"{kind}\0{value}".encode(), key=self._key, digest_size=20, person=b"parcours-subject"
        )
        return digest.hexdigest()
