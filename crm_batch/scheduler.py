"""``serve``: the nightly run at its local time every day and the quarterly reviews on the
first day of each quarter, with catch-up and clean shutdown.

Quarterly. The business date of a quarterly run is the quarter's last day; its slot is
``schedule.quarterly_at`` on the next day (the first day of the next quarter). The same
slot and catch-up rules apply; with the default 31-day catch-up window that means only
the latest missed quarter is reviewed (an older review is of little use to anyone).

Slots. The nightly run of business date D is due at ``schedule.nightly_at`` on day D + 1,
local time in ``general.timezone``. A slot is computed from the calendar every time,
never by adding 24 hours to the previous one, so the loop does not drift, and runs are
tracked by business date, so daylight-saving changes neither skip nor double a night:

* spring forward: a slot inside the skipped hour (02:30 where clocks jump from 02:00 to
  03:00) falls as far after the change as it would have been after 02:00: at 03:30;
* fall back: a slot inside the repeated hour runs at its first occurrence, once.

Catch-up (``schedule.catch_up``), decided at start-up and at every slot from the run log:

* ``all`` (default): every business date of the last ``max_catch_up_days`` days without a
  successful nightly run is run, oldest first, but none before the first successful
  nightly run on record (a fresh installation starts with the latest date only). The
  earlier dates compute KPIs and snapshots only; the team workbooks and reports are
  rebuilt once, for the last date. A date whose run failed is retried at the next slot,
  not in a tight loop;
* ``latest``: only the most recent due date;
* ``none``: nothing at start-up; afterwards the date of each slot that passes.

A failing run is logged and never stops the loop. A run refused because another one is
in progress (cron, a manual run) is tried again at the next poll. SIGTERM and SIGINT set a
stop flag: the loop ends after the run in progress (a safe point), without starting more.
The ``schedule`` library drives the polling; which dates are due is computed from the
injected clock, so tests control time without sleeping.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import schedule

from crm_batch.config import ScheduleSettings, Settings
from crm_batch.errors import AlreadyRunningError, CrmBatchError
from crm_batch.periods import period_containing

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Job = Callable[[date], object]
OkDates = Callable[[], Iterable[date]]

#: How often the loop looks at the clock (a slot is run at most this long after its time).
POLL_SECONDS = 30.0


def stop_on_signals(
    stop: threading.Event, signums: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)
) -> None:
    """Set ``stop`` when one of ``signums`` arrives; call from the main thread.

    The Python-level handler does nothing itself, on purpose: ``Event.set`` takes the
    event's lock, which the interrupted main thread holds for a moment each time it enters
    ``stop.wait``, so a handler calling it can wait for itself for ever (a SIGTERM that
    landed as the loop entered its wait once hung ``serve`` until it was killed). The
    C-level handler writes the signal's number to a wake-up socket instead, and a watcher
    thread reads it and sets the event.
    """
    # a socket pair rather than a pipe: Windows takes only a socket as the wake-up fd
    receiver, sender = socket.socketpair()
    sender.setblocking(False)
    signal.set_wakeup_fd(sender.fileno())
    for signum in signums:
        signal.signal(signum, _signal_noted)
    wanted = {int(signum) for signum in signums}

    def watch() -> None:
        # this thread holds both ends for the life of the process: a collected ``sender``
        # would close the wake-up fd under the C-level handler
        with receiver, sender:
            while True:
                received = [number for number in receiver.recv(64) if number in wanted]
                if received and not stop.is_set():
                    log.info(
                        "serve: %s received; stopping after the run in progress",
                        signal.Signals(received[0]).name,
                    )
                if received:
                    stop.set()

    threading.Thread(target=watch, name="crm-batch-signals", daemon=True).start()


def _signal_noted(signum: int, frame: object) -> None:
    """The Python-level handler of :func:`stop_on_signals`: the wake-up socket does the work."""


def utc_now() -> datetime:
    """The real clock: the current time, timezone-aware."""
    return datetime.now(UTC)


def nightly_slot(business_date: date, at: time, tz: ZoneInfo) -> datetime:
    """When the nightly run of ``business_date`` is due (aware, UTC): ``at`` local time on
    the next day; see the module docstring for daylight-saving changes."""
    local = datetime.combine(business_date + timedelta(days=1), at, tzinfo=tz)  # fold=0
    return local.astimezone(UTC)


def _quarter_end_on_or_before(day: date) -> date:
    """The last day of the latest quarter that ended on or before ``day``."""
    end = period_containing(day, "quarter").end
    return end if end == day else period_containing(day, "quarter").previous().end


@dataclass(frozen=True)
class Cadence:
    """Which days are business dates of a run kind; each is due at ``at`` local time on
    the day after it (nightly: every day; quarterly: each quarter's last day, so the
    review of a quarter is due on the first day of the next)."""

    kind: str
    floor: Callable[[date], date]  # the latest business date on or before a day
    ceiling: Callable[[date], date]  # the earliest business date on or after a day

    def previous(self, day: date) -> date:
        """The business date before ``day`` (a business date)."""
        return self.floor(day - timedelta(days=1))

    def latest_due(self, now: datetime, at: time, tz: ZoneInfo) -> date:
        """The most recent business date whose slot is at or before ``now``."""
        candidate = self.floor(now.astimezone(tz).date() - timedelta(days=1))
        while nightly_slot(candidate, at, tz) > now:
            candidate = self.previous(candidate)
        return candidate

    def between(self, first: date, last: date) -> list[date]:
        """Business dates from ``first`` to ``last`` (both included), oldest first."""
        days: list[date] = []
        day = self.floor(last)
        while day >= first:
            days.append(day)
            day = self.previous(day)
        return days[::-1]


NIGHTLY = Cadence("nightly", floor=lambda day: day, ceiling=lambda day: day)
QUARTERLY = Cadence(
    "quarterly",
    floor=_quarter_end_on_or_before,
    ceiling=lambda day: period_containing(day, "quarter").end,
)


class NightlyScheduler:
    """Decides which business dates of one run kind are due and runs them; ``serve`` has
    one per kind (nightly, quarterly)."""

    def __init__(
        self,
        settings: ScheduleSettings,
        tz: ZoneInfo,
        *,
        job: Job,
        ok_dates: OkDates,
        clock: Clock = utc_now,
        stop: threading.Event | None = None,
        cadence: Cadence = NIGHTLY,
        catch_up_job: Job | None = None,
    ) -> None:
        self.settings = settings
        # the earlier dates of a catch-up run this instead of ``job`` (nightly: KPIs and
        # snapshots only; the workbooks and reports are rebuilt once, for the last date)
        self.catch_up_job = catch_up_job
        self.cadence = cadence
        self.at = settings.quarterly_at if cadence.kind == "quarterly" else settings.nightly_at
        self.tz = tz
        self.job = job
        self.ok_dates = ok_dates
        self.clock = clock
        self.stop = stop or threading.Event()
        self.handled_through: date | None = None  # the latest slot's date already handled
        self._refused: set[date] = set()  # refused as already running: retry at next poll

    def latest_due(self) -> date:
        """The most recent business date due by the clock."""
        return self.cadence.latest_due(self.clock(), self.at, self.tz)

    def next_slot(self) -> datetime:
        """The next slot after now (aware, UTC)."""
        upcoming = self.cadence.ceiling(self.latest_due() + timedelta(days=1))
        return nightly_slot(upcoming, self.at, self.tz)

    def due_dates(self) -> list[date]:
        """Business dates to run now, oldest first (see the module docstring)."""
        latest = self.latest_due()
        ok = set(self.ok_dates())
        if self.settings.catch_up == "latest":
            wanted = [latest]
        elif self.settings.catch_up == "none":
            first = latest if self.handled_through is None else self.handled_through
            wanted = self.cadence.between(first + timedelta(days=1), latest)
        elif not ok:
            wanted = [latest]
        else:
            start = max(latest - timedelta(days=self.settings.max_catch_up_days), min(ok))
            wanted = self.cadence.between(start, latest)
        return [day for day in wanted if day not in ok]

    def start(self) -> list[date]:
        """At start-up: catch up as configured; returns the dates run successfully."""
        if self.settings.catch_up == "none":
            self.handled_through = self.latest_due()
            return []
        return self.tick()

    def tick(self) -> list[date]:
        """At each poll: run what a new slot (or a refused run) made due; returns the dates
        run successfully. A run log that cannot be read is logged and tried at the next
        poll."""
        latest = self.latest_due()
        try:
            if self.handled_through is None or latest > self.handled_through:
                dates = self.due_dates()
            elif self._refused:
                dates = sorted(self._refused - set(self.ok_dates()))
            else:
                return []
        except CrmBatchError as exc:
            log.error("serve: cannot read the run log: %s; trying again at the next poll", exc)
            return []
        except Exception:
            log.exception("serve: cannot read the run log; trying again at the next poll")
            return []
        return self._run(dates, latest)

    def _run(self, dates: list[date], latest: date) -> list[date]:
        done = []
        self._refused.clear()
        for day in dates:
            if self.stop.is_set():
                log.info(
                    "serve: stopping; %s %s and later dates are left for the next start",
                    self.cadence.kind,
                    day,
                )
                return done
            job = self.job if day == dates[-1] or self.catch_up_job is None else self.catch_up_job
            try:
                job(day)
            except AlreadyRunningError as exc:
                log.warning(
                    "serve: %s %s not started: %s; trying again soon", self.cadence.kind, day, exc
                )
                self._refused.add(day)
            except CrmBatchError as exc:
                log.error(
                    "serve: %s %s failed: %s; retried at the next slot", self.cadence.kind, day, exc
                )
            except Exception:
                log.exception(
                    "serve: %s %s failed unexpectedly; retried at the next slot",
                    self.cadence.kind,
                    day,
                )
            else:
                done.append(day)
        self.handled_through = latest
        log.info(
            "serve: next %s slot %s",
            self.cadence.kind,
            self.next_slot().astimezone(self.tz).strftime("%Y-%m-%d %H:%M %Z"),
        )
        return done


def due_business_dates(
    settings: Settings, cadence: Cadence = NIGHTLY, *, clock: Clock = utc_now
) -> list[date]:
    """The business dates ``serve`` would run at start-up now, oldest first; with
    ``catch_up = "none"`` the latest due date unless it already ran. For one-shot runs
    from cron or a systemd timer (``nightly --catch-up``)."""
    from crm_batch.app.runlog import completed_dates

    ok = completed_dates(settings, cadence.kind)

    def refuse(day: date) -> None:
        raise AssertionError("due_business_dates never runs a job")

    scheduler = NightlyScheduler(
        settings.schedule,
        settings.tz,
        job=refuse,
        ok_dates=lambda: ok,
        clock=clock,
        cadence=cadence,
    )
    if settings.schedule.catch_up == "none":
        latest = scheduler.latest_due()
        return [] if latest in ok else [latest]
    return scheduler.due_dates()


def serve(
    settings: Settings,
    stop: threading.Event,
    *,
    clock: Clock = utc_now,
    job: Job | None = None,
    quarterly_job: Job | None = None,
    poll_seconds: float = POLL_SECONDS,
) -> None:
    """Run the nightly job at its slots, and the quarterly reviews on the first day of each
    quarter, until ``stop`` is set (by SIGTERM/SIGINT). Each poll runs the due nightly
    dates first, so a quarter's reviews read the snapshots of its last day."""
    from crm_batch.app.runlog import completed_dates
    from crm_batch.jobs.pipeline import run_nightly, run_quarterly
    from crm_batch.periods import period_containing

    def recorded_ok_dates(kind: str) -> Callable[[], set[date]]:
        return lambda: completed_dates(settings, kind)

    def review(quarter_end: date) -> object:
        quarter = period_containing(quarter_end, "quarter")
        return run_quarterly(settings, quarter, send=settings.email.enabled)

    schedulers = [
        NightlyScheduler(
            settings.schedule,
            settings.tz,
            job=job or (lambda day: run_nightly(settings, day)),
            ok_dates=recorded_ok_dates("nightly"),
            clock=clock,
            stop=stop,
            catch_up_job=None if job else (lambda day: run_nightly(settings, day, outputs=False)),
        ),
        NightlyScheduler(
            settings.schedule,
            settings.tz,
            job=quarterly_job or review,
            ok_dates=recorded_ok_dates("quarterly"),
            clock=clock,
            stop=stop,
            cadence=QUARTERLY,
        ),
    ]
    log.info(
        "serve: nightly at %s, quarterly reviews at %s on the first day of each quarter "
        "(%s), catch-up %s",
        settings.schedule.nightly_at.strftime("%H:%M"),
        settings.schedule.quarterly_at.strftime("%H:%M"),
        settings.timezone,
        settings.schedule.catch_up,
    )
    for scheduler in schedulers:
        scheduler.start()

    def tick() -> None:
        for scheduler in schedulers:
            scheduler.tick()

    ticker = schedule.Scheduler()
    ticker.every(poll_seconds).seconds.do(tick)
    while not stop.is_set():
        ticker.run_pending()
        idle = ticker.idle_seconds
        stop.wait(poll_seconds if idle is None else min(max(idle, 0.0), poll_seconds))
    log.info("serve: stopped")
