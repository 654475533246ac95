"""Retries: transient failures are tried again with capped backoff, permanent ones never."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fixtures.batch import DEMO_DAY, demo_folder, folder_settings, run_rows
from sqlalchemy.engine import URL

from crm_batch.app.engines import build_engine
from crm_batch.app.runlog import OK, RUN_STAGE
from crm_batch.config import RetrySettings
from crm_batch.errors import (
    DataError,
    DependencyError,
    PermanentDependencyError,
    StageTimeoutError,
)
from crm_batch.jobs.pipeline import NIGHTLY_STAGES, RunContext, Stage, StageOutcome, run_nightly
from crm_batch.retry import call_with_retries, is_transient
from crm_batch.source.db import check_connection, make_engine


class Flaky:
    """Fails with ``errors`` in turn, then returns ``result``; counts the calls."""

    def __init__(self, errors: list[BaseException], result: object = "done") -> None:
        self.errors = list(errors)
        self.result = result
        self.calls = 0

    def __call__(self) -> object:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.result


POLICY = RetrySettings(attempts=4, first_wait_seconds=2, max_wait_seconds=5, budget_seconds=600)


def test_transient_failures_are_retried_with_capped_jittered_backoff() -> None:
    action = Flaky([DependencyError("db restarting")] * 3)
    waits: list[float] = []

    assert call_with_retries(action, POLICY, what="t", sleep=waits.append) == "done"

    assert action.calls == 4
    assert len(waits) == 3
    # 2 x 2^n plus up to 2 s of jitter, never above the 5 s cap
    assert 2 <= waits[0] <= 4
    assert 4 <= waits[1] <= 5
    assert waits[2] == pytest.approx(5)


@pytest.mark.parametrize(
    "error",
    [
        PermanentDependencyError("password authentication failed"),
        DataError("orders row 3: amount is negative"),
        StageTimeoutError("statement ran past its limit"),
        RuntimeError("a bug"),
    ],
)
def test_permanent_errors_fail_at_once(error: BaseException) -> None:
    action = Flaky([error])
    waits: list[float] = []

    with pytest.raises(type(error)) as raised:
        call_with_retries(action, POLICY, what="t", sleep=waits.append)

    assert raised.value is error
    assert action.calls == 1
    assert waits == []
    assert not is_transient(error)


def test_the_last_error_propagates_when_the_attempts_are_used_up() -> None:
    errors = [DependencyError(f"down {n}") for n in range(5)]
    action = Flaky(errors)
    waits: list[float] = []

    with pytest.raises(DependencyError, match="down 3"):
        call_with_retries(action, POLICY, what="t", sleep=waits.append)
    assert action.calls == 4
    assert len(waits) == 3


def test_no_wait_may_end_past_the_budget() -> None:
    # the first wait (10 s or more) would end past the 5 s budget: give up at once
    tight = RetrySettings(attempts=5, first_wait_seconds=10, max_wait_seconds=60, budget_seconds=5)
    action = Flaky([DependencyError("down")] * 5)
    waits: list[float] = []

    with pytest.raises(DependencyError):
        call_with_retries(action, tight, what="t", sleep=waits.append)
    assert action.calls == 1
    assert waits == []


def test_each_retry_is_logged_with_the_attempt_and_the_wait(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="crm_batch.retry")
    call_with_retries(
        Flaky([DependencyError("connection reset")]), POLICY, what="nightly x: kpis", sleep=id
    )
    [record] = caplog.records
    assert record.getMessage().startswith(
        "nightly x: kpis: attempt 1 of 4 failed (connection reset); trying again in"
    )


# --- in the pipeline -----------------------------------------------------------------------


def _flaky_stage(failures: int) -> tuple[Stage, list[int]]:
    calls: list[int] = []

    def run(_context: RunContext) -> StageOutcome:
        calls.append(1)
        if len(calls) <= failures:
            raise DependencyError("server closed the connection unexpectedly")
        return StageOutcome(7, "seven rows")

    return Stage("flaky", run), calls


def test_a_stage_that_fails_transiently_is_run_again_and_the_run_succeeds(
    tmp_path: Path,
) -> None:
    settings = folder_settings(demo_folder(tmp_path))
    stage, calls = _flaky_stage(failures=2)
    waits: list[float] = []

    result = run_nightly(settings, DEMO_DAY, stages=(stage,), sleep=waits.append)

    assert len(calls) == 3
    assert len(waits) == 2
    assert [(s.name, s.rows) for s in result.stages] == [("flaky", 7)]
    engine = build_engine(settings)
    try:
        rows = [r for r in run_rows(engine) if r["run_id"] == result.run_id]
    finally:
        engine.dispose()
    assert {(r["stage"], r["status"]) for r in rows} == {(RUN_STAGE, OK), ("flaky", OK)}


def test_a_stage_marked_not_retryable_runs_once(tmp_path: Path) -> None:
    settings = folder_settings(demo_folder(tmp_path))
    stage, calls = _flaky_stage(failures=1)
    once = Stage(stage.name, stage.run, retry=False)

    with pytest.raises(DependencyError):
        run_nightly(settings, DEMO_DAY, stages=(once,), sleep=lambda _s: None)
    assert len(calls) == 1
    assert NIGHTLY_STAGES[0].retry  # the KPI stage is idempotent: retried


# --- what the database says --------------------------------------------------------------


def test_a_refused_port_is_transient() -> None:
    engine = make_engine("postgresql+psycopg://crm@127.0.0.1:9/sales", connect_timeout=3)
    with pytest.raises(DependencyError) as raised:
        check_connection(engine)
    assert raised.value.transient


@pytest.mark.postgres
def test_an_unknown_postgres_database_is_permanent(postgres_url: URL) -> None:
    engine = make_engine(postgres_url.set(database="crm_no_such_database"), connect_timeout=5)
    with pytest.raises(PermanentDependencyError, match="crm_no_such_database"):
        check_connection(engine)


@pytest.mark.mariadb
def test_a_wrong_mariadb_password_is_permanent(mariadb_url: URL) -> None:
    engine = make_engine(mariadb_url.set(password="wrong-password"), connect_timeout=5)
    with pytest.raises(PermanentDependencyError) as raised:
        check_connection(engine)
    assert "wrong-password" not in str(raised.value)
