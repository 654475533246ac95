"""Work without a timeout of its own runs in a worker process that is stopped on time."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from fixtures.timeouts import hang_bound

from crm_batch.errors import DataError, StageTimeoutError
from crm_batch.isolation import TimeLimitedPool


def _pid_and_square(value: int) -> tuple[int, int]:
    return os.getpid(), value * value


def _refuse(name: str) -> None:
    raise DataError(f"report not rendered: {name} refused")


def _mark_then_sleep(marker: str, seconds: float) -> str:
    Path(marker).write_text("started", encoding="utf-8")
    time.sleep(seconds)
    return "done"


@pytest.fixture
def pool():
    with TimeLimitedPool(workers=1) as workers:
        yield workers


def test_a_call_runs_in_another_process_and_returns_its_value(pool: TimeLimitedPool) -> None:
    pid, square = pool.call(_pid_and_square, 12, seconds=60, what="square")
    assert square == 144
    assert pid != os.getpid()


def test_an_error_in_the_worker_reaches_the_caller_unchanged(pool: TimeLimitedPool) -> None:
    with pytest.raises(DataError, match=r"report not rendered: x\.css refused"):
        pool.call(_refuse, "x.css", seconds=60, what="refuse")


@pytest.mark.slow
def test_a_call_past_its_limit_is_stopped_and_the_next_call_gets_a_fresh_worker(
    pool: TimeLimitedPool,
) -> None:
    first_pid, _ = pool.call(_pid_and_square, 1, seconds=60, what="warm-up")
    started = time.monotonic()
    with pytest.raises(StageTimeoutError, match=r"rendering x\.pdf ran past its time limit of 1 s"):
        pool.call(time.sleep, 600, seconds=1, what="rendering x.pdf")
    assert time.monotonic() - started < 30  # a hang bound, not a speed test
    with pytest.raises(ProcessLookupError):
        os.kill(first_pid, 0)  # the stuck worker is gone

    second_pid, square = pool.call(_pid_and_square, 3, seconds=60, what="after")
    assert square == 9
    assert second_pid != first_pid


def test_ctrl_c_at_the_terminal_does_not_stop_a_call_in_progress(
    pool: TimeLimitedPool, tmp_path: Path
) -> None:
    """Ctrl-C reaches the workers too (one process group); ``serve`` then finishes the run
    in progress, so the worker's call must still complete."""
    worker, _ = pool.call(_pid_and_square, 1, seconds=60, what="warm-up")
    marker = tmp_path / "started"
    pending = pool.start(_mark_then_sleep, str(marker), 2.0)
    deadline = time.monotonic() + hang_bound(60)
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(worker, signal.SIGINT)
    assert pending.result(hang_bound(30), "sleep") == "done"
