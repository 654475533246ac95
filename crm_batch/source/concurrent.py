"""Run independent sql/ queries at the same time, each on its own connection.

The extraction and the data checks are a dozen independent statements. A PostgreSQL
server runs each statement on one backend process (one core), so on a server with cores
to spare two statements in flight finish sooner than two in a row, and the client's
Arrow conversion of one result overlaps the server's work on the next. SQLAlchemy
engines hand each thread its own pooled connection, and the ADBC path opens its own
connection per query, so the queries need nothing else to run side by side.

Embedded databases gain nothing: DuckDB already spreads one statement over every core
(and one file admits one process), SQLite serialises on its file. They default to one
worker, which runs the queries one after the other in the calling thread as before.

Errors: when a query fails, the queries not started yet are cancelled, the ones already
running are waited for (each is bounded by the statement timeout, so a wait is bounded
too and no thread or connection outlives the call), and the error of the failed query
that comes first in the given order is raised unchanged (DependencyError,
StageTimeoutError, SqlContractError naming the file): the same error a sequential run
raises when one query fails.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TypeVar

from crm_batch.errors import ConfigError
from crm_batch.source.db import Source, dialect_name

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Environment variable that overrides the number of queries run at the same time.
WORKERS_ENV = "CRM_BATCH_QUERY_WORKERS"
#: Queries in flight per dialect when nothing says otherwise (absent: one at a time).
#: Three: on a 2-core PostgreSQL server with the client beside it, the full KPI set
#: took 44 s with one, 40 s with two, 37-39 s with three and 38 s with four
#: (benchmarks/kpi_bench.py): the gain is mostly the client's Arrow conversion of one
#: result overlapping the server's work on the next, and it stops at three. Spark: two,
#: by the same reasoning (one Spark Connect session runs concurrent operations, and each
#: small query spends most of its time in Spark's job scheduling, not on the cores);
#: not measured against one yet: the environment variable overrides it.
DEFAULT_WORKERS: Mapping[str, int] = {"postgresql": 3, "spark": 2}
#: Upper bound for the setting: each worker holds a pooled connection (and, on
#: PostgreSQL, an ADBC one beside it); SQLAlchemy's default pool lends at most 15.
MAX_WORKERS = 8


def query_workers(engine: Source, workers: int | None = None) -> int:
    """How many queries to run at the same time on ``engine``.

    ``workers`` if given, else :data:`WORKERS_ENV` if set, else the dialect's default
    (:data:`DEFAULT_WORKERS`, 1 for dialects not listed). A value outside
    1..:data:`MAX_WORKERS` is a :class:`ConfigError` naming where it came from.
    """
    source = "workers"
    if workers is None:
        raw = os.environ.get(WORKERS_ENV, "").strip()
        if not raw:
            return DEFAULT_WORKERS.get(dialect_name(engine), 1)
        source = f"environment variable {WORKERS_ENV}"
        try:
            workers = int(raw)
        except ValueError:
            raise ConfigError(f"{source}={raw!r}: expected a whole number of queries") from None
    if isinstance(workers, bool) or not 1 <= workers <= MAX_WORKERS:
        raise ConfigError(f"{source}={workers!r}: expected 1 to {MAX_WORKERS} queries at a time")
    return workers


def run_concurrently(
    tasks: Sequence[tuple[str, Callable[[], T]]],
    workers: int,
    *,
    start_first: Sequence[str] = (),
) -> dict[str, T]:
    """Each task's result by its key, running up to ``workers`` tasks at the same time.

    With one worker the tasks run in the calling thread in the given order, as a plain
    loop would. With more, the keys in ``start_first`` start first (the slow ones: the
    last task to start sets the finish), then the rest in the given order. On failure
    see the module docstring: the first failed task *in the given order* wins, whatever
    the start order.
    """
    keys = [key for key, _ in tasks]
    if len(set(keys)) != len(keys):
        raise ValueError(f"task keys must be unique: {keys}")
    if workers <= 1 or len(tasks) <= 1:
        return {key: task() for key, task in tasks}
    stop = threading.Event()  # set by the first failure: queued tasks then never start

    def guarded(task: Callable[[], T]) -> T | _Skipped:
        if stop.is_set():
            return SKIPPED
        try:
            return task()
        except BaseException:
            stop.set()
            raise

    executor = ThreadPoolExecutor(
        max_workers=min(workers, len(tasks)), thread_name_prefix="crm-query"
    )
    futures: dict[str, Future[T | _Skipped]] = {}
    try:
        rank = {key: i for i, key in enumerate(start_first)}
        for key, task in sorted(tasks, key=lambda item: rank.get(item[0], len(rank))):
            futures[key] = executor.submit(guarded, task)
        wait(futures.values(), return_when=FIRST_EXCEPTION)
    finally:
        # cancel what has not started; wait for the running queries (bounded by the
        # statement timeout) so no connection is left busy behind the caller's back
        executor.shutdown(wait=True, cancel_futures=True)
    failed = [
        futures[key]
        for key in keys
        if key in futures and not futures[key].cancelled() and futures[key].exception()
    ]
    if failed:
        ran = [f for f in futures.values() if not f.cancelled() and f.exception() is None]
        done = sum(f.result() is not SKIPPED for f in ran)
        log.debug("a query failed; %d of the other %d had finished", done, len(tasks) - 1)
        raise failed[0].exception()  # type: ignore[misc]
    # without a failure no task was skipped: every result is the task's own
    return {key: futures[key].result() for key in keys}  # type: ignore[misc]


class _Skipped:
    """The result of a task that did not start because another one had failed."""


SKIPPED = _Skipped()
