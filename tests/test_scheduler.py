"""The serve loop's decisions with an injected clock (no sleeping): slots, catch-up,
failures, daylight saving; and `serve` as a process stopped with SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fixtures.batch import DEMO_DAY, demo_folder, folder_settings, run_rows
from fixtures.timeouts import hang_bound
from test_cli import REPO

from crm_batch.app.engines import build_engine
from crm_batch.app.snapshots import read_snapshots
from crm_batch.config import ScheduleSettings
from crm_batch.errors import AlreadyRunningError, DataError
from crm_batch.scheduler import (
    NIGHTLY,
    QUARTERLY,
    Cadence,
    NightlyScheduler,
    due_business_dates,
    nightly_slot,
    serve,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")


class World:
    """A clock we move by hand and a run log kept in memory; the job records its calls."""

    def __init__(self, tz: ZoneInfo, ok: set[date] | None = None) -> None:
        self.tz = tz
        self.now = datetime(2026, 7, 1, 1, 0, tzinfo=tz)
        self.ok: set[date] = set(ok or ())
        self.calls: list[date] = []
        self.failing: dict[date, BaseException] = {}

    def clock(self) -> datetime:
        return self.now

    def at(self, text: str) -> None:
        """Set the clock to a local wall time ``YYYY-MM-DD HH:MM`` (first occurrence)."""
        self.now = datetime.fromisoformat(text).replace(tzinfo=self.tz)

    def job(self, day: date) -> None:
        self.calls.append(day)
        if day in self.failing:
            raise self.failing[day]
        self.ok.add(day)

    def scheduler(self, cadence: Cadence = NIGHTLY, **schedule: object) -> NightlyScheduler:
        return NightlyScheduler(
            ScheduleSettings(**{"nightly_at": clock_time(2, 30), **schedule}),
            self.tz,
            job=self.job,
            ok_dates=lambda: set(self.ok),
            clock=self.clock,
            cadence=cadence,
        )


LAST_FIVE = ["2026-06-26", "2026-06-27", "2026-06-28", "2026-06-29", "2026-06-30"]


def d(text: str) -> date:
    return date.fromisoformat(text)


def test_a_start_after_the_slot_runs_that_night_once() -> None:
    world = World(SHANGHAI, ok={d("2026-06-29")})
    world.at("2026-07-01 09:00")
    nightly = world.scheduler()
    assert nightly.start() == [d("2026-06-30")]
    assert nightly.tick() == []
    world.at("2026-07-02 02:29")
    assert nightly.tick() == []
    world.at("2026-07-02 02:30")
    assert nightly.tick() == [d("2026-07-01")]
    assert world.calls == [d("2026-06-30"), d("2026-07-01")]


def test_a_start_before_the_slot_waits_for_it() -> None:
    world = World(SHANGHAI, ok={d("2026-06-29")})
    world.at("2026-07-01 01:00")
    nightly = world.scheduler()
    assert nightly.start() == []
    world.at("2026-07-01 02:31")
    assert nightly.tick() == [d("2026-06-30")]
    assert world.calls == [d("2026-06-30")]


@pytest.mark.parametrize(
    ("catch_up", "max_days", "expected"),
    [
        # every hole since the first successful night, the oldest first
        ("all", 31, ["2026-06-21", "2026-06-22", "2026-06-23", "2026-06-24", *LAST_FIVE]),
        ("all", 2, ["2026-06-28", "2026-06-29", "2026-06-30"]),
        ("latest", 31, ["2026-06-30"]),
        ("none", 31, []),
    ],
)
def test_missed_nights_are_caught_up_once_each_as_configured(
    catch_up: str, max_days: int, expected: list[str]
) -> None:
    world = World(SHANGHAI, ok={d("2026-06-20"), d("2026-06-25")})
    world.at("2026-07-01 08:00")
    nightly = world.scheduler(catch_up=catch_up, max_catch_up_days=max_days)
    assert nightly.start() == [d(x) for x in expected]
    assert nightly.tick() == []
    world.at("2026-07-02 03:00")
    assert nightly.tick() == [d("2026-07-01")]
    assert world.calls == [*(d(x) for x in expected), d("2026-07-01")]


def test_a_fresh_installation_starts_with_the_latest_date_only() -> None:
    world = World(SHANGHAI)
    world.at("2026-07-01 08:00")
    assert world.scheduler().start() == [d("2026-06-30")]


def test_a_failing_night_does_not_stop_the_loop_and_is_retried_at_the_next_slot() -> None:
    world = World(SHANGHAI, ok={d("2026-06-27")})
    world.failing = {
        d("2026-06-28"): DataError("orders.sql: column amount should be money"),
        d("2026-06-29"): ZeroDivisionError("a bug"),
    }
    world.at("2026-07-01 08:00")
    nightly = world.scheduler()
    assert nightly.start() == [d("2026-06-30")]
    assert nightly.tick() == []  # no tight retry loop within the same slot
    world.failing.clear()
    world.at("2026-07-02 08:00")
    assert nightly.tick() == [d("2026-06-28"), d("2026-06-29"), d("2026-07-01")]
    assert world.calls.count(d("2026-06-28")) == 2


def test_a_night_refused_as_already_running_is_tried_at_the_next_poll() -> None:
    world = World(SHANGHAI, ok={d("2026-06-29")})
    world.failing = {d("2026-06-30"): AlreadyRunningError("another run is in progress")}
    world.at("2026-07-01 08:00")
    nightly = world.scheduler()
    assert nightly.start() == []
    world.failing.clear()
    assert nightly.tick() == [d("2026-06-30")]
    assert nightly.tick() == []


def test_an_unreadable_run_log_is_logged_and_read_again_at_the_next_poll() -> None:
    world = World(SHANGHAI, ok={d("2026-06-29")})
    world.at("2026-07-01 08:00")
    nightly = world.scheduler()
    readable = False

    def ok_dates() -> set[date]:
        if not readable:
            raise DataError("database down")
        return set(world.ok)

    nightly.ok_dates = ok_dates
    assert nightly.tick() == []
    readable = True
    assert nightly.tick() == [d("2026-06-30")]


def test_slots_do_not_drift_across_a_long_run() -> None:
    world = World(SHANGHAI, ok={d("2026-06-30")})
    nightly = world.scheduler()
    world.at("2026-07-01 08:00")
    nightly.start()
    for _ in range(1, 200):
        world.now += timedelta(hours=12)
        nightly.tick()
    slots = {
        nightly_slot(x, clock_time(2, 30), SHANGHAI).astimezone(SHANGHAI).time()
        for x in world.calls
    }
    assert slots == {clock_time(2, 30)}
    assert world.calls == [d("2026-07-01") + timedelta(days=n) for n in range(len(world.calls))]
    assert len(world.calls) == 99


@pytest.mark.parametrize(
    ("first_day", "nights"),
    [("2026-03-26", 6), ("2026-10-22", 6)],  # Europe/Berlin: spring forward 03-29, back 10-25
)
@pytest.mark.parametrize("at", [clock_time(2, 30), clock_time(3, 0), clock_time(1, 30)])
def test_daylight_saving_changes_neither_skip_nor_double_a_night(
    first_day: str, nights: int, at: clock_time
) -> None:
    world = World(BERLIN, ok={d(first_day) - timedelta(days=1)})
    world.at(f"{first_day} 12:00")
    nightly = world.scheduler(nightly_at=at)
    nightly.start()
    # poll every 10 minutes of real (UTC) time for six days
    for _ in range(nights * 24 * 6):
        world.now = (world.now.astimezone(UTC) + timedelta(minutes=10)).astimezone(BERLIN)
        nightly.tick()
    expected = [d(first_day) + timedelta(days=n) for n in range(nights)]
    assert world.calls == expected


def test_slot_times_around_daylight_saving_changes() -> None:
    # spring forward 2026-03-29 02:00 -> 03:00: 02:30 does not exist, the slot is 03:30 CEST
    spring = nightly_slot(d("2026-03-28"), clock_time(2, 30), BERLIN).astimezone(BERLIN)
    assert (spring.hour, spring.minute, spring.utcoffset()) == (3, 30, timedelta(hours=2))
    # fall back 2026-10-25 03:00 -> 02:00: 02:30 happens twice, the slot is the first (CEST)
    autumn = nightly_slot(d("2026-10-24"), clock_time(2, 30), BERLIN)
    assert autumn == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    second_0230 = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert NIGHTLY.latest_due(second_0230, clock_time(2, 30), BERLIN) == d("2026-10-24")


def test_a_quarters_review_is_due_on_the_first_day_of_the_next_quarter() -> None:
    six = clock_time(6, 0)
    before = datetime(2026, 7, 1, 5, 59, tzinfo=SHANGHAI)
    after = datetime(2026, 7, 1, 6, 0, tzinfo=SHANGHAI)
    assert QUARTERLY.latest_due(before, six, SHANGHAI) == d("2026-03-31")
    assert QUARTERLY.latest_due(after, six, SHANGHAI) == d("2026-06-30")
    assert QUARTERLY.between(d("2025-11-01"), d("2026-07-15")) == [
        d("2025-12-31"),
        d("2026-03-31"),
        d("2026-06-30"),
    ]


def test_quarterly_reviews_run_once_per_quarter_at_their_slot() -> None:
    world = World(SHANGHAI, ok={d("2026-03-31")})
    world.at("2026-06-30 12:00")
    quarterly = world.scheduler(QUARTERLY, quarterly_at=clock_time(6, 0))
    assert quarterly.start() == []
    assert quarterly.next_slot() == datetime(2026, 7, 1, 6, 0, tzinfo=SHANGHAI)
    for _ in range(24 * 100):  # hourly polls for 100 days
        world.now += timedelta(hours=1)
        quarterly.tick()
    assert world.calls == [d("2026-06-30"), d("2026-09-30")]
    assert quarterly.next_slot() == datetime(2027, 1, 1, 6, 0, tzinfo=SHANGHAI)


def test_quarterly_catch_up_runs_only_the_latest_missed_quarter() -> None:
    world = World(SHANGHAI, ok={d("2025-12-31")})
    world.at("2026-11-25 09:00")
    world.scheduler(QUARTERLY, quarterly_at=clock_time(6, 0)).start()
    # two quarters were missed; the 31-day catch-up window holds only the latest
    assert world.calls == [d("2026-09-30")]


def test_serve_at_the_slot_writes_what_nightly_writes(tmp_path: Path) -> None:
    settings = folder_settings(demo_folder(tmp_path))
    slot = nightly_slot(DEMO_DAY, settings.schedule.nightly_at, settings.tz)
    stop = threading.Event()

    def nightly_job(day: date) -> None:
        from crm_batch.jobs.pipeline import run_nightly

        run_nightly(settings, day)

    reviews: list[date] = []

    def review_then_stop(day: date) -> None:
        reviews.append(day)
        stop.set()

    serve(
        settings,
        stop,
        clock=lambda: slot + timedelta(minutes=1),
        job=nightly_job,
        quarterly_job=review_then_stop,
    )
    # 02:31 on 2026-07-01, before the 06:00 quarterly slot: Q1's review is the one due
    assert reviews == [d("2026-03-31")]
    engine = build_engine(settings)
    try:
        runs = [r for r in run_rows(engine) if r["stage"] == "run"]
        served = read_snapshots(engine)
    finally:
        engine.dispose()
    assert [(r["business_date"], r["status"]) for r in runs] == [(DEMO_DAY, "ok")]
    assert set(served["as_of"].dt.date) == {DEMO_DAY}

    from crm_batch.jobs.pipeline import run_nightly

    run_nightly(settings, DEMO_DAY)
    engine = build_engine(settings)
    try:
        nightly = read_snapshots(engine)
    finally:
        engine.dispose()
    columns = ["as_of", "scope", "team", "kpi", "value"]
    assert served[columns].equals(nightly[columns])


def test_serve_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    folder = demo_folder(tmp_path)
    with (folder / "crm_batch.toml").open("a", encoding="utf-8") as handle:
        handle.write('[schedule]\ncatch_up = "none"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_BATCH_")}
    process = subprocess.Popen(
        [sys.executable, str(REPO / "run_batch.py"), "serve"],
        cwd=folder,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:  # wait until the loop is up
            if "next nightly slot" in line or "serve: nightly at" in line:
                break
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=hang_bound(60))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert "serve: stopped" in process.stderr.read()


SIGNAL_INSIDE_THE_WAIT = """
import logging, os, signal, threading, time
from crm_batch.scheduler import stop_on_signals

logging.basicConfig(level=logging.INFO)

stop = threading.Event()
stop_on_signals(stop)
with stop._cond:  # what stop.wait() holds for a moment as the serve loop enters it
    os.kill(os.getpid(), signal.SIGTERM)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:  # the Python-level handler runs in here
        pass
print("stopped" if stop.wait(30) else "still running")
"""


def test_a_signal_arriving_as_the_loop_enters_its_wait_still_stops_it() -> None:
    """The race that once hung ``serve`` for good: a handler calling ``stop.set()`` while
    the main thread held the event's lock waited for itself."""
    result = subprocess.run(
        [sys.executable, "-c", SIGNAL_INSIDE_THE_WAIT],
        capture_output=True,
        text=True,
        timeout=hang_bound(60),
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "stopped"
    assert "SIGTERM received" in result.stderr


def test_due_business_dates_for_one_shot_catch_up_runs(tmp_path: Path) -> None:
    settings = folder_settings(demo_folder(tmp_path))
    slot = nightly_slot(DEMO_DAY, settings.schedule.nightly_at, settings.tz)
    # a fresh installation: the latest date only
    assert due_business_dates(settings, clock=lambda: slot) == [DEMO_DAY]
    assert due_business_dates(settings, clock=lambda: slot - timedelta(minutes=1)) == [
        DEMO_DAY - timedelta(days=1)
    ]
    from crm_batch.jobs.pipeline import run_nightly

    run_nightly(settings, DEMO_DAY)
    three_nights_later = slot + timedelta(days=3, hours=1)
    assert due_business_dates(settings, clock=lambda: three_nights_later) == [
        DEMO_DAY + timedelta(days=n) for n in (1, 2, 3)
    ]
    latest_only = settings.model_copy(
        update={"schedule": settings.schedule.model_copy(update={"catch_up": "latest"})}
    )
    assert due_business_dates(latest_only, clock=lambda: three_nights_later) == [
        DEMO_DAY + timedelta(days=3)
    ]
    assert due_business_dates(settings, clock=lambda: slot + timedelta(hours=1)) == []


def test_nightly_catch_up_and_as_of_exclude_each_other(tmp_path: Path) -> None:
    from test_cli import run_cli

    result = run_cli("nightly", "--catch-up", "--as-of", "2026-06-30", cwd=tmp_path)
    assert result.returncode == 2
    assert "--catch-up picks the business dates itself" in result.stderr
