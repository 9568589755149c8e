"""Errors that speak to the user. The CLI prints these as one line and exits non-zero."""


class YtlabelError(Exception):
    """Base class for expected failures caused by input, configuration or environment."""


class DataError(YtlabelError):
    """A record, file or data source is unreadable or does not match the YT8M v2 schema.

    Attributes:
        source: the file or URI the problem is in.
        offset: byte offset of the record (None when the problem is not tied to one record).
    """

    def __init__(self, message: str, *, source: str | None = None, offset: int | None = None):
        self.source = source
        self.offset = offset
        self.reason = message
        where = ""
        if source is not None:
            where = source if offset is None else f"{source} at byte offset {offset}"
            where += ": "
        super().__init__(where + message)


class SchemaError(DataError):
    """A record parses but its features are not the v2 schema (wrong release, sizes, label ids)."""


class NonFiniteError(SchemaError):
    """A float feature holds NaN or infinity: bad values in one record (skippable with --skip-corrupt)."""


class ConfigError(YtlabelError, ValueError):
    """A setting, flag or spec field with a wrong value (named in the message).

    A ValueError too, so library callers can catch it as one; the CLI prints it as one line.
    """


class TrainingError(YtlabelError):
    """Training cannot go on: a non-finite loss, or a run directory that holds a different run."""
