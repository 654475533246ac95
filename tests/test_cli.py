"""The CLI through its real entry point (``python run_batch.py``), as a user runs it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.timeouts import hang_bound

REPO = Path(__file__).resolve().parents[1]
#: The shared small demo below: about 40 s on an idle 2-core machine.
DEMO_TIMEOUT = 600


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300):
    """Run ``run_batch.py`` in a clean environment (no CRM_BATCH_* from the caller);
    ``timeout`` (seconds on an idle machine) is a hang bound (:func:`hang_bound`)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CRM_BATCH_")}
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, str(REPO / "run_batch.py"), *args],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=hang_bound(timeout),
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


def small_demo(folder: Path, *options: str, timeout: float = DEMO_TIMEOUT) -> Path:
    """``demo`` of 400 customers ending 2026-06-30 in ``folder`` (its stdout saved in
    demo_stdout.txt). The settings render reports in English only: 18 PDFs instead of
    the demo's default 36, half the run (the demo's two default languages are tested in
    test_demo.py, the zh-CN PDFs in test_reports.py and test_quarterly_report.py)."""
    (folder / "crm_batch.toml").write_text(
        f'[paths]\ndata_dir = "var"\nsql_dir = "{(REPO / "sql").as_posix()}"\n'
        '[reports]\nlanguages = ["en"]\n',
        encoding="utf-8",
    )
    result = run_cli(
        "demo",
        "--customers",
        "400",
        "--orders",
        "4000",
        "--as-of",
        "2026-06-30",
        *options,
        cwd=folder,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr
    (folder / "demo_stdout.txt").write_text(result.stdout, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo database alone (``--database-only``: seconds), shared by the read-only
    checks of ``status`` and ``kpis`` below."""
    return small_demo(tmp_path_factory.mktemp("demo_db"), "--database-only", timeout=120)


@pytest.mark.parametrize("command", [[], ["demo"], ["status"]])
def test_help_explains_each_command(command: list[str], tmp_path: Path) -> None:
    result = run_cli(*command, "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "Usage:" in result.stdout
    if command:
        assert "--config" in result.stdout
        assert "--db" in result.stdout
        assert "--as-of" in result.stdout


def test_demo_builds_a_database_and_prints_its_summary(demo_db: Path) -> None:
    stdout = (demo_db / "demo_stdout.txt").read_text(encoding="utf-8")
    assert (demo_db / "var" / "demo.duckdb").is_file()
    assert "Net revenue by team and year" in stdout
    assert "all teams" in stdout
    # three years of history ending 2026-06-30 touch four calendar years
    for year in ("2023", "2024", "2025", "2026"):
        assert year in stdout
    leftovers = [p.name for p in (demo_db / "var").iterdir() if "building" in p.name]
    assert leftovers == []
    assert not (demo_db / "output").exists()  # --database-only: no workbooks, no reports


def test_status_reports_what_the_demo_holds(demo_db: Path) -> None:
    result = run_cli("status", "--as-of", "2026-06-30", cwd=demo_db)
    assert result.returncode == 0, result.stderr
    assert "connection: ok" in result.stdout
    customers_line = next(line for line in result.stdout.splitlines() if "customers" in line)
    assert customers_line.split()[-1] == "400"


@pytest.mark.slow
def test_demo_leaves_team_workbooks_and_reports_in_the_set_languages(tmp_path: Path) -> None:
    """The whole demo: history, the nightly run and the quarterly run (about 40 s idle)."""
    demo_dir = small_demo(tmp_path)
    stdout = (demo_dir / "demo_stdout.txt").read_text(encoding="utf-8")
    assert "Net revenue by team and year" in stdout
    workbooks = sorted(p.name for p in (demo_dir / "output" / "workbooks").glob("*.xlsm"))
    assert len(workbooks) == 8  # one per team
    pdfs = {p.name for p in (demo_dir / "output" / "reports").glob("*.pdf")}
    assert "diagnosis_all_2026-06-30_en.pdf" in pdfs
    assert "quarterly_all_2026Q2_en.pdf" in pdfs  # 2026-06-30 ends Q2
    assert "quarterly_Shanghai_2026Q2_en.pdf" in pdfs
    assert not any("zh-CN" in name for name in pdfs)  # reports.languages = ["en"] holds
    assert len(pdfs) == 2 * 9  # two reports x (company + 8 teams)
    assert "nightly 2026-06-30: ok in" in stdout
    assert "quarterly 2026-06-30: ok in" in stdout
    assert "Team workbooks:" in stdout


def test_demo_rerun_replaces_its_own_database(workdir: Path) -> None:
    totals = []
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
            "--database-only",
            cwd=workdir,
        )
        assert result.returncode == 0, result.stderr
        totals.append(_duckdb_scalar(workdir, "select sum(amount) from orders"))
    assert totals[0] != totals[1]  # the second seed's data replaced the first
    assert _duckdb_scalar(workdir, "select count(*) from orders") == 300
    assert sorted(p.name for p in (workdir / "var").iterdir()) == ["demo.duckdb"]


def test_demo_refuses_to_overwrite_a_foreign_database(workdir: Path) -> None:
    target = workdir / "sales.sqlite"
    with sqlite3.connect(target) as conn:
        conn.execute("create table customers (customer_id integer primary key, name text)")
        conn.execute("insert into customers values (1, 'real customer')")
    before = target.read_bytes()
    result = run_cli(
        "demo",
        "--customers",
        "50",
        "--orders",
        "300",
        "--database-only",
        "--db",
        f"sqlite:///{target}",
        cwd=workdir,
    )
    assert result.returncode == 4, result.stderr
    assert "customers" in result.stderr
    assert "--replace" in result.stderr
    assert target.read_bytes() == before


def test_demo_with_a_missing_sql_folder_says_so_before_building(tmp_path: Path) -> None:
    """A settings file copied elsewhere whose paths.sql_dir is not there: one error naming
    both settings, and no database built that the next attempt would have to replace."""
    (tmp_path / "crm_batch.toml").write_text(
        '[paths]\ndata_dir = "var"\nsql_dir = "sql"\n', encoding="utf-8"
    )
    result = run_cli("demo", "--customers", "50", "--orders", "300", cwd=tmp_path, timeout=60)
    assert result.returncode == 4, result.stderr
    assert f"{tmp_path / 'sql'} is missing too: check paths.sql_dir" in result.stderr
    assert not (tmp_path / "var" / "demo.duckdb").exists()


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


# -- kpis ----------------------------------------------------------------------------


def _duckdb_scalar(folder: Path, sql: str) -> float:
    import duckdb

    with duckdb.connect(str(folder / "var" / "demo.duckdb"), read_only=True) as conn:
        return conn.execute(sql).fetchone()[0]


def test_kpis_json_is_stable_and_agrees_with_plain_sql(demo_db: Path) -> None:
    import json

    from crm_batch.kpi.definitions import registry

    result = run_cli("kpis", "--as-of", "2026-06-30", "--format", "json", cwd=demo_db)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["format"], document["version"]) == ("crm-batch-kpis", 1)
    assert document["period"] == {
        "label": "2026Q2",
        "kind": "quarter",
        "start": "2026-04-01",
        "end": "2026-06-30",
    }
    [overall] = document["results"]
    assert (overall["scope"], overall["team"]) == ("all", None)
    assert list(overall["kpis"]) == list(registry())
    kpis = overall["kpis"]
    # independent figures straight from the database
    assert kpis["customers_total"] == _duckdb_scalar(
        demo_db, "select count(*) from customers where signup_date <= date '2026-06-30'"
    )
    revenue_12m = _duckdb_scalar(
        demo_db,
        "select sum(case when status = 'paid' then amount else -amount end) from orders "
        "where status in ('paid', 'refunded') and order_date > date '2025-06-30' "
        "and order_date <= date '2026-06-30'",
    )
    assert kpis["revenue_12m"] == pytest.approx(float(revenue_12m), abs=0.01)
    buyers_q2 = _duckdb_scalar(
        demo_db,
        "select count(distinct customer_id) from orders where status = 'paid' "
        "and order_date between date '2026-04-01' and date '2026-06-30'",
    )
    assert kpis["period_buyers"] == buyers_q2


def test_kpis_by_team_adds_up(demo_db: Path) -> None:
    import json

    result = run_cli("kpis", "--as-of", "2026-06-30", "--format", "json", "--by-team", cwd=demo_db)
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout)["results"]
    overall, teams = results[0], results[1:]
    assert len(teams) == 8
    for name in ("customers_total", "orders_12m", "period_buyers", "leads_created"):
        assert sum(team["kpis"][name] for team in teams) == overall["kpis"][name], name


def test_kpis_csv_and_table(demo_db: Path) -> None:
    from crm_batch.kpi.definitions import registry

    csv_result = run_cli("kpis", "--as-of", "2026-06-30", "--format", "csv", cwd=demo_db)
    assert csv_result.returncode == 0, csv_result.stderr
    lines = csv_result.stdout.splitlines()
    assert lines[0] == "as_of,period,scope,team,kpi,value,note"
    assert len(lines) == 1 + len(registry())
    table = run_cli("kpis", "--as-of", "2026-06-30", "--lang", "en", cwd=demo_db)
    assert table.returncode == 0, table.stderr
    assert "Repurchase rate" in table.stdout
    assert "%" in table.stdout


def test_kpis_customers_out_keeps_hostile_names_as_text(demo_db: Path, tmp_path: Path) -> None:
    import csv

    target = tmp_path / "customers.csv"
    result = run_cli(
        "kpis",
        "--as-of",
        "2026-06-30",
        "--customers-out",
        str(target),
        "--format",
        "json",
        cwd=demo_db,
    )
    assert result.returncode == 0, result.stderr
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel opens the Chinese names correctly
    with target.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == _duckdb_scalar(
        demo_db, "select count(*) from customers where signup_date <= date '2026-06-30'"
    )
    names = [row["name"] for row in rows]
    assert not any(name.startswith(("=", "+", "-", "@")) for name in names)
    assert any(name.startswith("'=") for name in names)
    assert any(len(name) >= 40_000 for name in names)
    assert all(row["next_action"] for row in rows)
    # computed numbers with the decimals they mean, never 1591.624230769231
    for column, decimals in (("aov", 2), ("revenue_12m", 2), ("p_alive", 4)):
        written = [row[column] for row in rows if row[column]]
        assert written, column
        assert all(len(value.partition(".")[2]) <= decimals for value in written), column
    assert any(len(row["aov"].partition(".")[2]) == 2 for row in rows if row["aov"])


def test_kpis_unknown_team_is_named(demo_db: Path) -> None:
    result = run_cli("kpis", "--as-of", "2026-06-30", "--team", "Atlantis", cwd=demo_db)
    assert result.returncode == 3
    assert "Atlantis" in result.stderr
    assert "Shanghai" in result.stderr


def test_kpis_future_period_is_refused(demo_db: Path) -> None:
    result = run_cli("kpis", "--as-of", "2026-06-30", "--period", "2026Q4", cwd=demo_db)
    assert result.returncode == 3
    assert "2026Q4" in result.stderr


def test_kpis_snapshot_replaces_instead_of_duplicating(demo_db: Path) -> None:
    from crm_batch.kpi.definitions import registry

    for _ in range(2):
        result = run_cli(
            "kpis", "--as-of", "2026-06-30", "--snapshot", "--format", "csv", cwd=demo_db
        )
        assert result.returncode == 0, result.stderr
    rows = _duckdb_scalar(
        demo_db, "select count(*) from kpi_snapshots where as_of = date '2026-06-30'"
    )
    assert rows == (1 + 8) * len(registry())


def test_kpis_targets_compare_with_the_same_quarter_a_year_earlier(demo_db: Path) -> None:
    import json

    result = run_cli("kpis", "--as-of", "2026-06-30", "--targets", "--format", "json", cwd=demo_db)
    assert result.returncode == 0, result.stderr
    [overall] = json.loads(result.stdout)["results"]
    by_kpi = {row["kpi"]: row for row in overall["targets"]}
    assert set(by_kpi) == {
        "lead_conversion_rate",
        "repurchase_rate",
        "satisfaction_mean",
        "campaign_roi",
        "opt_out_rate",
    }
    baseline_run = run_cli(
        "kpis", "--as-of", "2025-06-30", "--period", "2025Q2", "--format", "json", cwd=demo_db
    )
    baseline = json.loads(baseline_run.stdout)["results"][0]["kpis"]
    repurchase = by_kpi["repurchase_rate"]
    assert repurchase["baseline_period"] == "2025Q2"
    assert repurchase["baseline"] == pytest.approx(baseline["repurchase_rate"])
    assert repurchase["actual"] == pytest.approx(overall["kpis"]["repurchase_rate"])
    # +35 % on the baseline, capped at 100 %
    assert repurchase["target"] == pytest.approx(min(baseline["repurchase_rate"] * 1.35, 1.0))
    assert repurchase["attainment"] == pytest.approx(repurchase["actual"] / repurchase["target"])
    assert repurchase["met"] is (repurchase["actual"] >= repurchase["target"])
    opt_out = by_kpi["opt_out_rate"]
    assert (opt_out["rule"], opt_out["target"]) == ("max", 0.03)
    assert opt_out["met"] is (opt_out["actual"] <= 0.03)


@pytest.mark.parametrize(("given", "expected"), [(None, "False"), ("1", "True")])
def test_the_cli_turns_numpys_huge_page_advice_off_unless_set(
    given: str | None, expected: str
) -> None:
    """Every command sets NUMPY_MADVISE_HUGEPAGE=0 before NumPy loads
    (crm_batch.runtime.prepare_process, whose docstring has the measurement); a value
    the user set wins; importing the package alone changes nothing."""
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    if given is not None:
        env["NUMPY_MADVISE_HUGEPAGE"] = given
    probe = (
        "import os, sys\n"
        "import crm_batch\n"
        "untouched = os.environ.get('NUMPY_MADVISE_HUGEPAGE')\n"
        "from click.testing import CliRunner\n"
        "from crm_batch.cli import main\n"
        "assert 'numpy' not in sys.modules, 'the CLI module must not load NumPy'\n"
        "CliRunner().invoke(main, ['status', '--help'], catch_exceptions=False)\n"
        "import numpy\n"
        "getter = getattr(numpy._core.multiarray, '_get_madvise_hugepage', None)\n"
        "print(untouched, 'unknown' if getter is None else getter())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    untouched, advice = done.stdout.split()
    assert untouched == str(given)
    if advice == "unknown":
        pytest.skip("this NumPy does not report its huge page advice")
    assert advice == expected
