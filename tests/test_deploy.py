"""The deployment examples in deploy/ stay true: their commands parse with the CLI, their
schedules equal the default settings, and systemd accepts the units."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from crm_batch.cli import main
from crm_batch.config import GeneralSettings, ScheduleSettings
from crm_batch.errors import ExitCode

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
UNITS = sorted((DEPLOY / "systemd").iterdir())
NIGHTLY_AT = ScheduleSettings().nightly_at
QUARTERLY_AT = ScheduleSettings().quarterly_at
TIMEZONE = GeneralSettings().timezone


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read(DEPLOY / "systemd" / name, encoding="utf-8")
    return parser


def assert_cli_accepts(arguments: list[str]) -> None:
    """The arguments after ``run_batch.py`` parse as a command of our CLI (nothing runs)."""
    command_name, *rest = arguments
    assert command_name in main.commands, f"unknown command {command_name!r}"
    command = main.commands[command_name]
    try:
        command.make_context(command_name, list(rest))
    except click.ClickException as exc:  # pragma: no cover - the failure message
        pytest.fail(f"run_batch.py {' '.join(arguments)}: {exc.format_message()}")


def run_batch_arguments(command_line: str) -> list[str]:
    words = shlex.split(command_line)
    return words[words.index("run_batch.py") + 1 :]


@pytest.mark.parametrize(
    "name",
    ["crm-batch-nightly.service", "crm-batch-quarterly.service", "crm-batch-serve.service"],
)
def test_each_service_runs_a_real_command_with_timeouts_and_a_failure_hook(name: str) -> None:
    service = unit(name)
    arguments = run_batch_arguments(service["Service"]["ExecStart"])
    assert_cli_accepts(arguments)
    assert service["Unit"]["OnFailure"] == "crm-batch-failure@%n.service"
    assert "EnvironmentFile" in service["Service"]  # secrets outside the repository
    timeout = "TimeoutStopSec" if arguments[0] == "serve" else "TimeoutStartSec"
    assert re.fullmatch(r"\d+(h|min|s)", service["Service"][timeout])


def test_the_nightly_service_treats_another_run_holding_the_lock_as_success() -> None:
    service = unit("crm-batch-nightly.service")["Service"]
    assert service["Type"] == "oneshot"
    assert service["SuccessExitStatus"] == str(int(ExitCode.ALREADY_RUNNING))
    assert "--catch-up" in run_batch_arguments(service["ExecStart"])


def test_serve_is_stopped_with_sigterm_and_restarted_after_a_crash() -> None:
    service = unit("crm-batch-serve.service")["Service"]
    assert service["KillSignal"] == "SIGTERM"
    # to serve alone: its run in progress keeps its render workers until it ends
    assert service["KillMode"] == "mixed"
    assert service["Restart"] == "on-failure"


def test_timers_fire_at_the_default_slots_and_catch_up_after_downtime() -> None:
    nightly = unit("crm-batch-nightly.timer")["Timer"]
    quarterly = unit("crm-batch-quarterly.timer")["Timer"]
    assert nightly["Persistent"] == quarterly["Persistent"] == "true"
    assert nightly["OnCalendar"] == f"*-*-* {NIGHTLY_AT:%H:%M:%S} {TIMEZONE}"
    # the first day of each quarter
    assert quarterly["OnCalendar"] == f"*-01,04,07,10-01 {QUARTERLY_AT:%H:%M:%S} {TIMEZONE}"


def _cron_entries() -> list[list[str]]:
    lines = (DEPLOY / "cron" / "crm-batch").read_text(encoding="utf-8").splitlines()
    return [
        line.split(None, 6)
        for line in lines
        if line.strip() and not line.startswith("#") and "=" not in line.split()[0]
    ]


def test_cron_entries_match_the_default_slots_and_run_real_commands() -> None:
    text = (DEPLOY / "cron" / "crm-batch").read_text(encoding="utf-8")
    assert f"CRON_TZ={TIMEZONE}" in text.splitlines()
    nightly, quarterly = _cron_entries()
    assert nightly[:5] == [str(NIGHTLY_AT.minute), str(NIGHTLY_AT.hour), "*", "*", "*"]
    assert quarterly[:5] == [str(QUARTERLY_AT.minute), str(QUARTERLY_AT.hour), "1", "1,4,7,10", "*"]
    for entry in (nightly, quarterly):
        assert entry[5] == "crm-batch"  # the /etc/cron.d user column
        command = entry[6].split(">>")[0].split("&&")[-1]
        assert_cli_accepts(run_batch_arguments(command))


def test_windows_tasks_run_real_commands_at_the_default_slots() -> None:
    text = (DEPLOY / "windows" / "install-tasks.cmd").read_text(encoding="utf-8")
    commands = re.findall(r"run_batch\.py ([^>\"]+)", text)
    assert len(commands) == 2
    for command in commands:
        assert_cli_accepts(command.split())
    assert f"/SC DAILY /ST {NIGHTLY_AT:%H:%M}" in text
    assert f"/M JAN,APR,JUL,OCT /D 1 /ST {QUARTERLY_AT:%H:%M}" in text


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    """``systemd-analyze verify`` on copies whose paths point at this checkout."""
    for source in UNITS:
        text = source.read_text(encoding="utf-8")
        text = text.replace("/opt/crm-batch/.venv/bin/python", sys.executable)
        text = text.replace("/opt/crm-batch", str(REPO))
        (tmp_path / source.name).write_text(text, encoding="utf-8")
    names = [p.name for p in UNITS if not p.name.endswith("@.service")]
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *names],
        cwd=tmp_path,
        env={**os.environ, "SYSTEMD_UNIT_PATH": f"{tmp_path}:"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_systemd_reads_the_quarterly_calendar_as_the_first_day_of_each_quarter() -> None:
    expression = unit("crm-batch-quarterly.timer")["Timer"]["OnCalendar"]
    result = subprocess.run(
        ["systemd-analyze", "calendar", "--iterations=4", expression],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "TZ": TIMEZONE},
    )
    elapses = re.findall(
        r"(?:Next elapse|Iter\. #\d): \w{3} (\d{4}-\d{2}-\d{2}) (\d{2}:\d{2})", result.stdout
    )
    assert len(elapses) == 4
    for day, at in elapses:
        assert day[5:] in {"01-01", "04-01", "07-01", "10-01"}
        assert at == f"{QUARTERLY_AT:%H:%M}"
