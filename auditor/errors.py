"""User-facing errors: each carries a message that names the place (file, row, key, record)."""

from __future__ import annotations


class AuditorError(Exception):
    """Base for every error caused by user input or an external system.

    The CLI prints ``str(err)`` as a one-paragraph message and exits non-zero; it never shows a
    traceback for these.
    """

    exit_code = 2


class ConfigError(AuditorError):
    """A config file or key is wrong: the message names the file, key path and what is allowed."""


class SourceDataError(AuditorError):
    """Input data (CSV, export, API payload) cannot be used as a whole."""


class SnapshotSchemaError(AuditorError):
    """A connector or fixture produced frames that do not match the Snapshot schema."""


class ConnectorError(AuditorError):
    """A CRM call failed for good (after retries) or was refused; nothing partial is passed on."""

    exit_code = 3


class OutputError(AuditorError):
    """The output folder cannot be used (a file, unwritable, ``/``, a folder of other files)."""


class DiskFullError(AuditorError):
    """A write failed because the disk (or the user's quota) is full; nothing was published.

    Exit status 3, like other failures of the environment rather than of the input.
    """

    exit_code = 3


class RunLockedError(AuditorError):
    """Another run of the same source on the same history store holds the run lock."""

    exit_code = 5
