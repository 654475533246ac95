"""Run work that has no timeout of its own in a worker process with a time limit.

WeasyPrint has no render timeout, and a thread cannot be stopped, so a pathological
report (or a bug in a layout library) would hang the night. :class:`TimeLimitedPool`
runs such calls in worker processes started with ``spawn`` (no inherited database
connections, locks or threads) and reused across calls, so the start-up cost is paid
once per run. A call that runs past its limit gets the workers terminated and raises
:class:`StageTimeoutError`; the next call starts fresh workers. Exceptions raised in a
worker (e.g. :class:`DataError`) reach the caller unchanged.

Workers ignore SIGINT: Ctrl-C at a terminal reaches the whole process group, and the
main process decides what it means (``serve`` finishes the run in progress, so its
reports must still render); the workers are stopped with SIGTERM by the pool itself.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.pool
import signal
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, TypeVar

from crm_batch.errors import StageTimeoutError

log = logging.getLogger(__name__)

T = TypeVar("T")


def _ignore_interrupts() -> None:
    """Pool worker initializer: SIGINT is the main process's to handle."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class TimeLimitedPool:
    """A small pool of worker processes whose calls each have a time limit."""

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self._pool: multiprocessing.pool.Pool | None = None

    def _ensure_pool(self) -> multiprocessing.pool.Pool:
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._pool = context.Pool(processes=self.workers, initializer=_ignore_interrupts)
        return self._pool

    def call(self, function: Callable[..., T], *args: Any, seconds: float, what: str) -> T:
        """``function(*args)`` in a worker; :class:`StageTimeoutError` after ``seconds``.

        ``function`` and ``args`` must be picklable (a module-level function).
        """
        return self.start(function, *args).result(seconds, what)

    def start(self, function: Callable[..., T], *args: Any) -> PendingCall[T]:
        """Queue ``function(*args)`` and return at once (to run several side by side)."""
        return PendingCall(self, self._ensure_pool().apply_async(function, args))

    def terminate(self) -> None:
        """Stop the workers now (a call ran past its limit, or the run is over)."""
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def close(self) -> None:
        """Let the workers finish and exit."""
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None

    def __enter__(self) -> TimeLimitedPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.terminate()


class PendingCall(Generic[T]):
    """A queued call of a :class:`TimeLimitedPool`."""

    def __init__(self, pool: TimeLimitedPool, result: multiprocessing.pool.AsyncResult) -> None:
        self._pool = pool
        self._result = result

    def result(self, seconds: float, what: str) -> T:
        """Wait up to ``seconds`` for the value; on expiry stop the workers and raise."""
        try:
            return self._result.get(timeout=seconds)
        except multiprocessing.TimeoutError:
            log.error("%s: still running after %.0f s; stopping its worker", what, seconds)
            self._pool.terminate()
            raise StageTimeoutError(
                f"{what} ran past its time limit of {seconds:g} s; it was stopped"
            ) from None
