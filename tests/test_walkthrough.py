"""README "Use your own data: a walkthrough", step by step, as a new company runs it.

A shop's exports (a GB18030 line-item CSV with Chinese headers and an .xlsx customer
list) -> `init` -> settings and two mapping files -> `check-source` -> `kpis` ->
`nightly`. The KPIs must be the ones the same data gives from its own database through
the same (customers and orders only) mapping, and the nightly must leave workbooks,
reports and its run log (in the state file: the folder source is read-only).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from fixtures.exports import AS_OF, MAPPING_DIR, demo_database, write_foreign_exports
from fixtures.timeouts import hang_bound

ROOT = Path(__file__).resolve().parents[1]
OPTIONAL = ("leads", "tickets", "campaigns", "touches")


def crm_batch(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "run_batch.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=hang_bound(300),
        check=False,
        env={**_clean_env(), "MPLCONFIGDIR": str(cwd / ".mpl")},
    )


def _clean_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("CRM_BATCH_")}


@pytest.mark.slow
def test_the_readme_walkthrough(tmp_path: Path) -> None:
    database = demo_database(tmp_path / "their-database.duckdb", seed=5)
    shop = tmp_path / "shop"
    # step 1: init
    started = crm_batch("init", str(shop), "--company", "茶香小铺", cwd=tmp_path)
    assert started.returncode == 0, started.stderr
    # step 2: the exports and the settings that point at them
    exports = shop / "exports"
    exports.mkdir()
    write_foreign_exports(database, exports)
    config = shop / "crm_batch.toml"
    settings = config.read_text(encoding="utf-8")
    assert '# folder = "exports"' in settings
    settings = settings.replace('# folder = "exports"', 'folder = "exports"')
    settings += '\n[source.files."客户名单.xlsx"]\nheader_row = 3\n'
    config.write_text(settings, encoding="utf-8")
    # step 3: the two mapping files; no leads, tickets, campaigns or touches in the exports
    for name in ("customers", "orders"):
        shutil.copyfile(MAPPING_DIR / f"{name}.sql", shop / "mapping" / f"{name}.sql")
    for name in OPTIONAL:
        (shop / "mapping" / f"{name}.sql").unlink()
    # step 4: check-source
    checked = crm_batch("check-source", "--as-of", AS_OF.isoformat(), cwd=shop)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "result: ready for a nightly run" in checked.stdout
    for name in OPTIONAL:
        assert f"{name:<10} (absent)" in checked.stdout
    # step 5: kpis, the same as the shop's own database through the same mapping
    args = ("kpis", "--as-of", AS_OF.isoformat(), "--period", "2026Q2", "--format", "json")
    from_folder = crm_batch(*args, cwd=shop)
    assert from_folder.returncode == 0, from_folder.stderr
    reference = tmp_path / "reference"
    (reference / "mapping").mkdir(parents=True)
    for name in ("customers", "orders"):
        shipped = ROOT / "sql" / "source" / f"{name}.sql"
        shutil.copyfile(shipped, reference / "mapping" / f"{name}.sql")
    (reference / "crm_batch.toml").write_text(
        f'[database]\nurl = "duckdb:///{database}"\n[paths]\nsource_dir = "mapping"\n',
        encoding="utf-8",
    )
    from_database = crm_batch(*args, cwd=reference)
    assert from_database.returncode == 0, from_database.stderr
    got, expected = json.loads(from_folder.stdout), json.loads(from_database.stdout)
    got.pop("generated_at", None)
    expected.pop("generated_at", None)
    assert got == expected
    kpis = got["results"][0]["kpis"]
    assert kpis["revenue_12m"] > 0
    assert kpis["lead_conversion_rate"] is None  # no leads: no data, never 0
    assert got["results"][0]["missing"]["lead_conversion_rate"] == "no leads mapped"
    # step 6: the nightly run: workbooks, reports, and its run log in the state file
    nightly = crm_batch("nightly", "--as-of", AS_OF.isoformat(), cwd=shop)
    assert nightly.returncode == 0, nightly.stderr[-3000:]
    workbooks = sorted((shop / "output" / "workbooks").glob("*.xlsm"))
    assert len(workbooks) >= 2
    assert list((shop / "output" / "reports").glob("*.pdf"))
    with duckdb.connect(str(shop / "var" / "state.duckdb"), read_only=True) as con:
        statuses = con.execute(
            "select status from batch_runs where stage = 'run' and kind = 'nightly'"
        ).fetchall()
    assert statuses == [("ok",)]
