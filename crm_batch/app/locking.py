"""One run at a time: an OS file lock in the data folder plus a database advisory lock.

* The file lock (``<data_dir>/crm-batch.lock``, through the ``filelock`` package:
  ``flock`` on Unix, ``msvcrt.locking`` on Windows) is held by the operating system for
  the process: it is released on a normal exit, on an exception and when the process is
  killed (``kill -9``), so a dead run never blocks the next one. The holder (pid, host,
  start, what it runs) is written to ``crm-batch.lock.json`` beside it, because Windows
  does not let other processes read a locked file; the message of a refused run names it.
* The database advisory lock (PostgreSQL ``pg_try_advisory_lock``, MariaDB/MySQL
  ``GET_LOCK(name, 0)``) covers runs on other machines against the same database. It is
  held on a dedicated connection for the whole run; the server releases it when the
  connection closes, also when the process dies. Its key is derived from the database
  and schema the output tables live in, so unrelated schemas never block each other.
  DuckDB and SQLite have no such lock (a DuckDB file admits one writing process anyway).

Both are tried once without waiting: a second run stops at once with
:class:`~crm_batch.errors.AlreadyRunningError` (exit code 6).

A database restart ends the lock's session, and with it the lock, while the run goes
on. The run therefore checks its lock at every safe point (before each stage,
:meth:`DatabaseLock.ensure_held`): a lost lock is taken again on a new connection when
nobody else took it meanwhile; when another run holds it now, this run stops with
:class:`~crm_batch.errors.LockLostError` (exit code 5), so two runs never go on writing
side by side.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from filelock import FileLock, Timeout
from sqlalchemy import Connection, Engine, text

from crm_batch.errors import AlreadyRunningError, DependencyError, LockLostError
from crm_batch.files import atomic_write_text
from crm_batch.source.failures import first_line

log = logging.getLogger(__name__)

LOCK_FILE_NAME = "crm-batch.lock"
HOLDER_FILE_NAME = "crm-batch.lock.json"
#: SQLAlchemy dialects whose databases have session-level advisory locks.
ADVISORY_DIALECTS = frozenset({"postgresql", "mysql", "mariadb"})


@dataclass(frozen=True)
class Holder:
    """Who holds the run lock: written beside the lock file while it is held."""

    pid: int
    host: str
    started_at: str  # local wall time, ISO format
    kind: str
    business_date: str
    run_id: str = ""

    @classmethod
    def this_process(
        cls, kind: str, business_date: str, started_at: str, run_id: str = ""
    ) -> Holder:
        """A holder record for the calling process."""
        return cls(os.getpid(), socket.gethostname(), started_at, kind, business_date, run_id)

    def describe(self) -> str:
        """E.g. ``nightly 2026-06-30 (pid 4242 on host ops1, started 2026-07-01T02:30:00)``."""
        return (
            f"{self.kind} {self.business_date} (pid {self.pid} on host {self.host}, "
            f"started {self.started_at})"
        )


def read_holder(data_dir: Path) -> Holder | None:
    """The holder recorded in ``data_dir``, or None when there is no readable record."""
    try:
        raw = json.loads((data_dir / HOLDER_FILE_NAME).read_text(encoding="utf-8"))
        return Holder(**raw)
    except (OSError, ValueError, TypeError):
        return None


@contextlib.contextmanager
def file_lock(data_dir: Path, holder: Holder) -> Iterator[Path]:
    """Hold the OS file lock of ``data_dir`` for the ``with`` block; yields the lock path.

    Raises :class:`AlreadyRunningError` naming the holder when another process has it.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_FILE_NAME
    lock = FileLock(path, timeout=0, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        other = read_holder(data_dir)
        who = other.describe() if other else "holder unknown"
        raise AlreadyRunningError(
            f"another crm-batch run is in progress: {who}; lock file {path}. This run stops "
            "without doing anything; run it again after that one has finished"
        ) from None
    try:
        atomic_write_text(data_dir / HOLDER_FILE_NAME, json.dumps(asdict(holder)))
        yield path
    finally:
        with contextlib.suppress(OSError):
            (data_dir / HOLDER_FILE_NAME).unlink()
        lock.release()


def advisory_lock_name(conn: Connection) -> str | None:
    """The advisory lock's name for the database and schema ``conn`` works in, or None
    when the database has no advisory locks."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        where = conn.execute(text("select current_database() || '.' || current_schema()"))
    elif dialect in {"mysql", "mariadb"}:
        where = conn.execute(text("select database()"))
    else:
        return None
    return f"crm_batch.{where.scalar_one()}"


def _postgres_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_try_advisory_lock`` (hash of the name)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _mysql_name(name: str) -> str:
    """A ``GET_LOCK`` name within MySQL's 64-character limit."""
    return f"crm_batch.{hashlib.sha1(name.encode()).hexdigest()}"


def try_advisory_lock(conn: Connection) -> bool | None:
    """Try the advisory lock once on ``conn``: True if taken, False if another session
    holds it, None when the database has none."""
    name = advisory_lock_name(conn)
    if name is None:
        return None
    if conn.dialect.name == "postgresql":
        result = conn.execute(
            text("select pg_try_advisory_lock(:key)"), {"key": _postgres_key(name)}
        )
    else:
        result = conn.execute(text("select get_lock(:name, 0)"), {"name": _mysql_name(name)})
    return bool(result.scalar())


def release_advisory_lock(conn: Connection) -> None:
    """Release the advisory lock taken on ``conn`` by :func:`try_advisory_lock`."""
    name = advisory_lock_name(conn)
    if name is None:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(text("select pg_advisory_unlock(:key)"), {"key": _postgres_key(name)})
    else:
        conn.execute(text("select release_lock(:name)"), {"name": _mysql_name(name)})


class DatabaseLock:
    """The run's advisory lock on its dedicated connection (see the module docstring).

    Truthy when a lock is held (PostgreSQL, MariaDB/MySQL); falsy on DuckDB and SQLite,
    which have none and whose checks then cost nothing.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None
        self.held = False

    def __bool__(self) -> bool:
        return self.held

    def acquire(self) -> None:
        """Take the lock once, without waiting; :class:`AlreadyRunningError` when another
        session holds it."""
        if self._engine.dialect.name not in ADVISORY_DIALECTS:
            return
        conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            taken = try_advisory_lock(conn)
        except BaseException:
            conn.close()
            raise
        if taken is False:
            conn.close()
            raise AlreadyRunningError(
                "another crm-batch run holds the database lock (possibly on another "
                "machine); this run stops without doing anything"
            )
        self._conn, self.held = conn, taken is True

    def ensure_held(self, where: str) -> None:
        """At a safe point (``where``, e.g. "before stage workbooks"): make sure the lock
        is still ours. A dropped session's lock is taken again when it is free; raises
        :class:`LockLostError` when another run took it, :class:`DependencyError` (retried
        by the caller's policy) when the database cannot be reached to check."""
        if not self.held or self._conn is None:
            return
        try:
            self._conn.execute(text("select 1")).scalar()
            return  # the session lives, so its lock does
        except Exception as exc:
            log.warning("%s: the database lock's session is gone (%s)", where, first_line(exc))
            self._discard()
        try:
            self.acquire()
        except AlreadyRunningError:
            self.held = False
            raise LockLostError(
                f"{where}: the run's database lock was lost (its session ended, e.g. in a "
                "database restart) and another crm-batch run holds it now; this run stops "
                "here so the two never write at the same time. Check `status`, then run "
                "this date again if the other run was not for it"
            ) from None
        except Exception as exc:
            self.held = False
            raise DependencyError(
                f"{where}: the database lock was lost and the database cannot be reached to "
                f"take it again: {first_line(exc)}"
            ) from None
        log.warning("%s: database lock taken again on a new connection", where)

    def release(self) -> None:
        """Release the lock and close its connection (the server releases it on close)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if self.held:
                release_advisory_lock(conn)
        except Exception as exc:  # closing the connection releases it too
            log.debug("advisory unlock failed (%s); closing the connection", exc)
            conn.invalidate()
        finally:
            self.held = False
            conn.close()

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.invalidate()
            with contextlib.suppress(Exception):
                conn.close()


@contextlib.contextmanager
def database_lock(engine: Engine) -> Iterator[DatabaseLock]:
    """Hold the database's advisory lock for the ``with`` block on a dedicated connection.

    Yields the :class:`DatabaseLock` (truthy when a lock is held, falsy when the database
    has none). Raises :class:`AlreadyRunningError` when another session holds it.
    """
    lock = DatabaseLock(engine)
    lock.acquire()
    try:
        yield lock
    finally:
        lock.release()
