"""The contract package's exception hierarchy. Decoding never raises: it returns rejections.
These are for programming errors (exporting schemas to a path that is a file, say)."""


class SchemaError(Exception):
    """Base of every exception raised by the `schemas` package."""


class ExportError(SchemaError):
    """JSON Schema files could not be written."""
