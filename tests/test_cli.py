"""The CLI through its real entry point (``python run_batch.py``), as a user runs it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300):
    """Run ``run_batch.py`` in a clean environment (no CRM_BATCH_* from the caller)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CRM_BATCH_")}
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, str(REPO / "run_batch.py"), *args],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder with a config whose relative paths all stay inside it."""
    (tmp_path / "crm_batch.toml").write_text(
        f'[paths]\ndata_dir = "var"\nsql_dir = "{(REPO / "sql").as_posix()}"\n'
        'workbooks_dir = "out/wb"\nreports_dir = "out/reports"\n',
        encoding="utf-8",
    )
    return tmp_path


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small demo built through the CLI, shared by the read-only checks below."""
    folder = tmp_path_factory.mktemp("demo")
    (folder / "crm_batch.toml").write_text(
        f'[paths]\ndata_dir = "var"\nsql_dir = "{(REPO / "sql").as_posix()}"\n',
        encoding="utf-8",
    )
    result = run_cli(
        "demo", "--customers", "400", "--orders", "4000", "--as-of", "2026-06-30", cwd=folder
    )
    assert result.returncode == 0, result.stderr
    (folder / "demo_stdout.txt").write_text(result.stdout, encoding="utf-8")
    return folder


@pytest.mark.parametrize("command", [[], ["demo"], ["status"]])
def test_help_explains_each_command(command: list[str], tmp_path: Path) -> None:
    result = run_cli(*command, "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "Usage:" in result.stdout
    if command:
        assert "--config" in result.stdout
        assert "--db" in result.stdout
        assert "--as-of" in result.stdout


def test_demo_builds_a_database_and_prints_its_summary(demo_dir: Path) -> None:
    stdout = (demo_dir / "demo_stdout.txt").read_text(encoding="utf-8")
    assert (demo_dir / "var" / "demo.duckdb").is_file()
    assert "Net revenue by team and year" in stdout
    assert "all teams" in stdout
    # three years of history ending 2026-06-30 touch four calendar years
    for year in ("2023", "2024", "2025", "2026"):
        assert year in stdout
    leftovers = [p.name for p in (demo_dir / "var").iterdir() if "building" in p.name]
    assert leftovers == []


def test_status_reports_what_the_demo_holds(demo_dir: Path) -> None:
    result = run_cli("status", "--as-of", "2026-06-30", cwd=demo_dir)
    assert result.returncode == 0, result.stderr
    assert "connection: ok" in result.stdout
    customers_line = next(line for line in result.stdout.splitlines() if "customers" in line)
    assert customers_line.split()[-1] == "400"


def test_demo_rerun_replaces_its_own_database(workdir: Path) -> None:
    for seed in ("1", "2"):
        result = run_cli(
            "demo",
            "--customers",
            "50",
            "--orders",
            "300",
            "--seed",
            seed,
            "--as-of",
            "2026-06-30",
            cwd=workdir,
        )
        assert result.returncode == 0, result.stderr


def test_demo_refuses_to_overwrite_a_foreign_database(workdir: Path) -> None:
    target = workdir / "sales.sqlite"
    with sqlite3.connect(target) as conn:
        conn.execute("create table customers (customer_id integer primary key, name text)")
        conn.execute("insert into customers values (1, 'real customer')")
    before = target.read_bytes()
    result = run_cli(
        "demo", "--customers", "50", "--orders", "300", "--db", f"sqlite:///{target}", cwd=workdir
    )
    assert result.returncode == 4, result.stderr
    assert "customers" in result.stderr
    assert "--replace" in result.stderr
    assert target.read_bytes() == before


def test_unknown_setting_is_named_with_file_and_exit_code_3(workdir: Path) -> None:
    config = workdir / "bad.toml"
    config.write_text("[thresholds]\ntier_a_revenue = 5\n", encoding="utf-8")
    result = run_cli("status", "--config", str(config), cwd=workdir)
    assert result.returncode == 3
    assert "thresholds.tier_a_revenue" in result.stderr
    assert str(config) in result.stderr


def test_missing_config_file_is_named(workdir: Path) -> None:
    result = run_cli("status", "--config", "nowhere.toml", cwd=workdir)
    assert result.returncode == 3
    assert "nowhere.toml" in result.stderr


def test_unreachable_database_exit_code_5_without_password(workdir: Path) -> None:
    result = run_cli(
        "status", "--db", "postgresql://crm:topsecret@127.0.0.1:1/sales", cwd=workdir, timeout=60
    )
    assert result.returncode == 5
    assert "127.0.0.1" in result.stdout + result.stderr
    assert "topsecret" not in result.stdout + result.stderr


def test_bad_date_is_a_usage_error(workdir: Path) -> None:
    result = run_cli("status", "--as-of", "2026-13-01", cwd=workdir)
    assert result.returncode == 2
    assert "YYYY-MM-DD" in result.stderr
