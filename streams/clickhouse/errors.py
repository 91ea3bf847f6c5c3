"""Storage errors: one hierarchy for everything that talks to ClickHouse."""

from streams.errors import ParcoursError


class StorageError(ParcoursError):
    """Base of every storage exception."""


class ConnectionFailed(StorageError):
    """ClickHouse (server or embedded) could not be reached or opened."""


class MigrationError(StorageError):
    """A migration failed, or an applied migration file was changed afterwards."""


class SinkError(StorageError):
    """Rows could not be written after every retry."""
