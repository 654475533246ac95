"""The CrmBatchError family.

Every error the suite raises on purpose derives from :class:`CrmBatchError`, carries the
process exit code the CLI uses for it, and has a message that names the file, setting,
row or column at fault and, where there is one, the fix. Messages never contain
passwords: database URLs are rendered with :func:`crm_batch.source.db.safe_url`.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes; documented in the README ("Exit codes")."""

    OK = 0
    INTERNAL = 1  # a bug: an unexpected exception (traceback in the log)
    USAGE = 2  # bad command line (click's own code)
    CONFIG = 3  # configuration file or environment invalid
    DATA = 4  # data invalid: sql/ contract broken, bad rows in the source
    DEPENDENCY = 5  # a dependency is unavailable: database, SMTP server
    ALREADY_RUNNING = 6  # another run holds the lock
    TIMEOUT = 7  # a stage ran past its time limit
    PROBLEMS = 8  # completed with problems: every stage ran, some team's output failed


class CrmBatchError(Exception):
    """Base class: an expected failure with a user-facing message.

    ``transient`` says whether trying again later can succeed (a server restarting, a
    dropped connection); :mod:`crm_batch.retry` retries only those.
    """

    exit_code: ExitCode = ExitCode.INTERNAL
    transient: bool = False


class ConfigError(CrmBatchError):
    """A setting is missing, unknown or of the wrong type."""

    exit_code = ExitCode.CONFIG


class SqlContractError(CrmBatchError):
    """A sql/ file breaks its header contract (parameters or columns)."""

    exit_code = ExitCode.DATA


class OutputError(CrmBatchError):
    """An output file or folder cannot be written (a read-only folder, a path that is a
    file, a full disk): the settings or the machine must change, so it is reported like a
    configuration problem."""

    exit_code = ExitCode.CONFIG


class DataError(CrmBatchError):
    """Source data that cannot be used (wrong type, broken reference)."""

    exit_code = ExitCode.DATA


class DependencyError(CrmBatchError):
    """A database or mail server cannot be reached or is failing for now: retried."""

    exit_code = ExitCode.DEPENDENCY
    transient = True


class PermanentDependencyError(DependencyError):
    """A database or mail server refuses us for good (bad credentials, unknown database,
    a 5xx reply): trying again cannot help, so it fails at once."""

    transient = False


class LockLostError(PermanentDependencyError):
    """The run's database lock was lost (its session died, e.g. in a server restart) and
    another run holds it now: this run stops at the next safe point instead of writing
    beside the other one."""


class AlreadyRunningError(CrmBatchError):
    """Another crm-batch run holds the lock."""

    exit_code = ExitCode.ALREADY_RUNNING


class StageTimeoutError(CrmBatchError):
    """A stage or a statement ran past its configured time limit."""

    exit_code = ExitCode.TIMEOUT


class CompletedWithProblemsError(CrmBatchError):
    """The run finished every stage, but some team's workbook, report or scope failed
    (the other teams got theirs); the message counts them, the log and ``status`` list
    each with what to do."""

    exit_code = ExitCode.PROBLEMS
