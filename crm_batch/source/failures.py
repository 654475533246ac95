"""What a database failure means for the run: the crm-batch error each one becomes.

A server that cannot be reached, a locked file or a lost connection is a
:class:`DependencyError` (retried); bad credentials or an unknown database a
:class:`PermanentDependencyError`; a statement past its time limit a
:class:`StageTimeoutError`; a statement the database rejects a :class:`SqlContractError`
naming the sql/ file. Messages carry the first line of the driver's error and the URL
without its password.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from crm_batch.errors import DependencyError, SqlContractError, StageTimeoutError
from crm_batch.urls import safe_url

#: Connection failures that waiting cannot fix: PostgreSQL SQLSTATEs (bad password,
#: no such role, no such database) and MySQL/MariaDB error numbers (access denied,
#: unknown database).
_PG_REFUSED_STATES = frozenset({"28P01", "28000", "3D000"})
_MYSQL_REFUSED_ERRORS = frozenset({1044, 1045, 1049, 1698})
_REFUSED_WORDS = ("password authentication failed", "does not exist", "access denied")
#: SQLite result codes for a busy/locked or unreadable database (not the query's fault).
_SQLITE_BUSY = frozenset({5, 6, 10, 13, 14})
#: PostgreSQL's SQLSTATE for a statement cancelled by ``statement_timeout``.
PG_QUERY_CANCELED = "57014"


def first_line(exc: BaseException | object) -> str:
    """The first line of an error's message (its type name when it has none); for a
    SQLAlchemy wrapper, the driver's own message (the wrapper adds the statement)."""
    cause = getattr(exc, "orig", None) or exc
    message = str(cause).strip().splitlines()
    return message[0] if message else type(cause).__name__


def refused_for_good(error: BaseException | None) -> bool:
    """Whether a failed connection is permanent (credentials, database name)."""
    if error is None:
        return False
    if getattr(error, "sqlstate", None) in _PG_REFUSED_STATES:
        return True
    args = getattr(error, "args", ())
    if args and isinstance(args[0], int) and args[0] in _MYSQL_REFUSED_ERRORS:
        return True
    text = str(error).lower()
    return any(words in text for words in _REFUSED_WORDS)


def timeout_error(where: str, reason: str) -> StageTimeoutError:
    """A statement stopped by its time limit (``where``: the sql/ file and the database)."""
    return StageTimeoutError(
        f"{where}: the statement ran past its time limit ({reason}); make the query "
        "cheaper or raise database.statement_timeout_seconds"
    )


def statement_error(exc: DBAPIError, path: Path, engine: Engine) -> Exception:
    """Classify a failed statement of the file ``path``: timeout, lost/locked database,
    or a rejected query."""
    reason = first_line(exc)
    where = f"{path.name} on {safe_url(engine.url)}"
    if _is_timeout(exc.orig):
        return timeout_error(where, reason)
    if exc.connection_invalidated or getattr(exc.orig, "sqlite_errorcode", None) in _SQLITE_BUSY:
        return DependencyError(f"{where}: {reason}")
    return rejected_error(path, reason)


def rejected_error(path: Path, reason: str) -> SqlContractError:
    """A statement of the file ``path`` the database rejected (unknown table or column,
    syntax)."""
    return SqlContractError(f"{path}: the database rejected the query: {reason}")


def _is_timeout(orig: BaseException | None) -> bool:
    if orig is None:
        return False
    if getattr(orig, "sqlstate", None) == PG_QUERY_CANCELED:
        return True
    args = getattr(orig, "args", ())
    code = args[0] if args and isinstance(args[0], int) else None
    if code in {1969, 3024}:  # MariaDB max_statement_time, MySQL max_execution_time
        return True
    return code == 2013 and "timed out" in str(orig)  # PyMySQL's socket read timeout
