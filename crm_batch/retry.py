"""Retry transient failures with capped exponential backoff inside a time budget.

A batch run at 02:30 should survive a database that restarts for a minute or an SMTP
server that answers "421 try again later", and it should fail fast on what waiting
cannot fix: bad credentials, a query the database rejects, bad data, a statement that
ran past its timeout (retrying a hang would multiply the wait). The errors say which
they are (:attr:`crm_batch.errors.CrmBatchError.transient`); this module only decides
when to try again, using tenacity (well kept, made for exactly this):

* at most ``retry.attempts`` attempts;
* waits of ``first_wait_seconds`` x 2^n plus up to ``first_wait_seconds`` of random
  jitter (so two runs that failed together do not retry together), capped at
  ``max_wait_seconds``;
* no wait that would end past ``budget_seconds`` after the first attempt started: the
  last error is raised instead, so a run never outlives its budget by sleeping.

``sleep`` is injectable so tests never sleep.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import tenacity

from crm_batch.config import RetrySettings
from crm_batch.errors import CrmBatchError

log = logging.getLogger(__name__)

T = TypeVar("T")


def is_transient(error: BaseException) -> bool:
    """Whether trying again later can succeed (the error itself says so)."""
    return isinstance(error, CrmBatchError) and error.transient


def call_with_retries(
    action: Callable[[], T],
    policy: RetrySettings,
    *,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``action`` until it succeeds, raises a permanent error, or the policy ends.

    ``what`` names the work in the log ("nightly 2026-11-24: kpis"). The error of the last
    attempt propagates unchanged (its exit code and message are the ones to report).
    """

    def log_retry(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "%s: attempt %d of %d failed (%s); trying again in %.0f s",
            what,
            state.attempt_number,
            policy.attempts,
            error,
            wait,
        )

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_transient),
        stop=tenacity.stop_after_attempt(policy.attempts)
        | tenacity.stop_before_delay(policy.budget_seconds),
        wait=tenacity.wait_exponential_jitter(
            multiplier=policy.first_wait_seconds,
            max=policy.max_wait_seconds,
            jitter=policy.first_wait_seconds,
        ),
        sleep=sleep,
        before_sleep=log_retry,
        reraise=True,
    )
    return retrying(action)
