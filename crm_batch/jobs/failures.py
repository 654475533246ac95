"""What a failed run tells the people who run the batch (``email.ops_recipients``).

:func:`crm_batch.jobs.runs.run_stages` keeps the run's last log lines in a
:class:`RecentLines` handler and, when the run fails, calls :func:`notify_ops` - so
cron, ``serve`` and the Windows task all send the same notice. The notice never changes
the run's outcome: its own failure is logged and the run's error propagates as it was.
"""

from __future__ import annotations

import collections
import logging
from datetime import date, datetime

from crm_batch.config import Settings
from crm_batch.errors import CrmBatchError, ExitCode

log = logging.getLogger(__name__)

#: Log lines kept for the notice.
KEEP_LINES = 20


class RecentLines(logging.Handler):
    """Keeps the last ``keep`` formatted records (INFO and above) in memory."""

    def __init__(self, keep: int = KEEP_LINES) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self._lines: collections.deque[str] = collections.deque(maxlen=keep)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            # one line each: a traceback or a multi-line message is cut at its first line
            self._lines.append(self.format(record).splitlines()[0])
        except Exception:  # a log handler must never break the run
            self.handleError(record)

    def lines(self) -> list[str]:
        """The kept lines, oldest first."""
        return list(self._lines)


def notify_ops(
    settings: Settings,
    *,
    kind: str,
    business_date: date,
    run_id: str,
    stage: str,
    error: BaseException,
    log_lines: list[str],
) -> bool:
    """Send the failure notice of a run that failed at ``stage`` with ``error``; True
    when it went out. Never raises."""
    if not settings.email.ops_recipients:
        return False
    try:
        from crm_batch.delivery import notify_failure

        code = error.exit_code if isinstance(error, CrmBatchError) else ExitCode.INTERNAL
        return notify_failure(
            settings,
            now=datetime.now(settings.tz),
            kind=kind,
            business_date=business_date.isoformat(),
            run_id=run_id,
            stage=stage,
            error=f"{type(error).__name__}: {error}",
            exit_code=int(code),
            log_lines=log_lines,
        )
    except Exception as exc:  # never mask the run's own error
        log.error("could not send the failure notice: %s", exc)
        return False
