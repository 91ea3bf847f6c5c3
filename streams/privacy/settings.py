"""Privacy settings (`PARCOURS_PRIVACY_*`, `PARCOURS_RETENTION_*`) and where the key comes from.

The key: `PARCOURS_PRIVACY_KEY` when set (required for pseudonymisation, and wherever more
than one machine must agree on the hashes: a ClickHouse server, streaming workers). Unset, the
embedded mode makes a random one once in `<data dir>/privacy.key` (mode 0600), so erasure and
suppression work out of the box on one machine. Losing the key makes the suppression list and
the pseudonyms unrecognisable: keep it with the database's backups, never in the database.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.privacy.errors import PrivacyError
from streams.privacy.keys import PrivacyKey
from streams.privacy.scrub import DEFAULT_ALLOW, Scrubber

KEY_FILE = "privacy.key"


class PrivacySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PARCOURS_PRIVACY_", env_file=".env", extra="ignore"
    )

    #: The secret of every keyed hash (pseudonyms, the suppression list, the audit table).
    key: SecretStr | None = None
    #: Replace customer_id and device_id by keyed pseudonyms at decode.
    pseudonymise: bool = False
    #: Redact emails, phone numbers and card numbers in properties and rejected bytes.
    scrub: bool = True
    #: More kinds to redact: JSON object of kind -> regular expression, e.g.
    #: `{"iban": "FR\\d{2}(?: ?\\d{4}){5}"}`.
    scrub_patterns: dict[str, str] = Field(default_factory=dict)
    #: Property names never scrubbed (JSON list); replaces the default list.
    scrub_allow: list[str] = Field(default_factory=lambda: sorted(DEFAULT_ALLOW))

    def scrubber(self) -> Scrubber | None:
        if not self.scrub:
            return None
        try:
            return Scrubber.with_extra(self.scrub_patterns, self.scrub_allow)
        except Exception as exc:  # re.error: a pattern that does not compile
            raise PrivacyError(f"PARCOURS_PRIVACY_SCRUB_PATTERNS: {exc}") from None


class RetentionSettings(BaseSettings):
    """How long rows are kept, in days of their own time (0: forever). streams/privacy/
    retention.py turns them into ClickHouse TTLs. At most 20,000 days (55 years): a TTL beyond
    ClickHouse's DateTime range (2106) wraps round and would expire everything."""

    model_config = SettingsConfigDict(
        env_prefix="PARCOURS_RETENTION_", env_file=".env", extra="ignore"
    )

    #: Personal rows: events, sessions, friction, identity links, session merges (13 months).
    personal_days: int = Field(default=396, ge=0, le=20_000)
    #: Rejected inputs and quarantined rows (their raw bytes may hold anything).
    rejected_days: int = Field(default=30, ge=0, le=20_000)
    #: Per-minute aggregates: anonymous counts, kept forever by default.
    aggregates_days: int = Field(default=0, ge=0, le=20_000)


def load_key(settings: PrivacySettings, data_dir: Path) -> PrivacyKey:
    """The configured key, or the embedded mode's own (made on first use)."""
    if settings.key is not None:
        secret = settings.key.get_secret_value()
        if not secret:
            raise PrivacyError("PARCOURS_PRIVACY_KEY is set but empty")
        return PrivacyKey(secret)
    if settings.pseudonymise:
        raise PrivacyError(
            "PARCOURS_PRIVACY_PSEUDONYMISE=true needs a secret PARCOURS_PRIVACY_KEY "
            "(the same one for every run: pseudonyms made with another key are other people)"
        )
    path = data_dir / KEY_FILE
    try:
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
        secret = path.read_text().strip()
    except FileExistsError:  # made by another process meanwhile
        secret = path.read_text().strip()
    except OSError as exc:
        raise PrivacyError(f"cannot read or create the privacy key file {path}: {exc}") from None
    if not secret:
        raise PrivacyError(f"the privacy key file {path} is empty")
    return PrivacyKey(secret)
