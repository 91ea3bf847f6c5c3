"""Privacy for a run that opens a database: the filter applied at decode, and retention.

The imperative shell around the pure parts: reads the settings and the key, the suppression
list from the database, and makes the tables' TTLs what `PARCOURS_RETENTION_*` says.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from clickhouse_connect.driver.client import Client

from streams.core.config import JourneyConfig
from streams.core.identity import is_shared_device
from streams.privacy.erase import suppression_list
from streams.privacy.policy import PrivacyFilter
from streams.privacy.retention import apply_retention
from streams.privacy.settings import PrivacySettings, RetentionSettings, load_key


def privacy_filter(
    client: Client,
    data_dir: Path,
    config: JourneyConfig,
    settings: PrivacySettings | None = None,
    retention: RetentionSettings | None = None,
) -> PrivacyFilter:
    """The filter for a run on `client`'s database (settings from the environment unless
    given), after applying the retention."""
    settings = settings or PrivacySettings()
    apply_retention(client, retention or RetentionSettings())
    return PrivacyFilter(
        load_key(settings, data_dir),
        scrubber=settings.scrubber(),
        pseudonymise=settings.pseudonymise,
        suppressed=suppression_list(client),
        shared_device=partial(is_shared_device, config=config),
    )


def worker_privacy(
    data_dir: Path, config: JourneyConfig, settings: PrivacySettings | None = None
) -> PrivacyFilter:
    """The streaming worker's filter: scrubbing and pseudonymisation at decode, as in the
    embedded mode. Its suppression list comes from the suppression topic (the worker reads
    no ClickHouse; streams/worker/suppression_topic.py adds it). Every worker must be given
    the same `PARCOURS_PRIVACY_KEY` (required to pseudonymise, and to recognise the hashes
    `parcours forget` published)."""
    settings = settings or PrivacySettings()
    return PrivacyFilter(
        load_key(settings, data_dir),
        scrubber=settings.scrubber(),
        pseudonymise=settings.pseudonymise,
        shared_device=partial(is_shared_device, config=config),
    )
