"""Bad settings and unwritable outputs end in one clear message naming the setting or
file, with the documented exit code, and nothing is lost (issue 13, point 7)."""

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from fixtures.batch import DEMO_DAY, demo_folder, folder_settings
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url

from crm_batch.cli import main
from crm_batch.config import load_settings
from crm_batch.errors import ConfigError, ExitCode, OutputError
from crm_batch.files import atomic_output
from crm_batch.jobs.pipeline import run_nightly
from crm_batch.source.db import make_engine


def test_tier_shares_over_all_buyers_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "crm_batch.toml"
    config.write_text("[thresholds]\ndiamond_share = 0.6\nsilver_share = 0.5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"silver_share.*diamond_share \(0\.6\) \+ silver_share"):
        load_settings(config, environ={}, cwd=tmp_path)


def test_a_misspelt_data_dir_is_an_error_not_an_empty_database(tmp_path: Path) -> None:
    folder = demo_folder(tmp_path / "company")
    config = folder / "crm_batch.toml"
    config.write_text(config.read_text().replace('data_dir = "var"', 'data_dir = "vra"'))
    result = CliRunner().invoke(
        main, ["kpis", "--config", str(config), "--as-of", DEMO_DAY.isoformat()]
    )
    assert result.exit_code == ExitCode.CONFIG, result.output
    assert "there is no database file" in result.output
    assert "paths.data_dir" in result.output
    assert not (folder / "vra" / "demo.duckdb").exists()  # nothing created by looking


def test_outputs_get_the_usual_permissions_and_keep_those_of_the_file_they_replace(
    tmp_path: Path,
) -> None:
    fresh = tmp_path / "report.pdf"
    with atomic_output(fresh, "wb") as stream:
        stream.write(b"%PDF")
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~mask  # 0644, not mkstemp's 0600
    fresh.chmod(0o640)
    with atomic_output(fresh, "wb") as stream:
        stream.write(b"%PDF again")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640


def test_a_workbooks_folder_that_is_a_file_ends_with_exit_3_naming_it(tmp_path: Path) -> None:
    folder = demo_folder(tmp_path / "company")
    blocker = folder / "output"
    blocker.write_text("not a folder", encoding="utf-8")  # output/workbooks cannot exist
    settings = folder_settings(folder)
    with pytest.raises(OutputError) as failed:
        run_nightly(settings, DEMO_DAY)
    assert failed.value.exit_code == ExitCode.CONFIG
    assert "output" in str(failed.value)
    assert "paths.workbooks_dir" in str(failed.value)
    assert blocker.read_text(encoding="utf-8") == "not a folder"


def test_one_sqlite_row_that_is_not_utf8_does_not_stop_the_night(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = make_url(f"sqlite:///{(tmp_path / 'sales.sqlite').as_posix()}")
    folder = demo_folder(tmp_path / "company", url)
    engine = make_engine(url)
    with engine.begin() as conn:  # 'Zhang' + a lone 0xFF byte, as a bad import writes it
        customer = conn.execute(text("select min(customer_id) from customers")).scalar_one()
        conn.execute(
            text(
                "update customers set name = cast(x'5a68616e67ff' as text) where customer_id = :c"
            ),
            {"c": customer},
        )
    engine.dispose()
    settings = folder_settings(folder, url)

    result = run_nightly(settings, DEMO_DAY)

    assert result.stages[-1].name == "delivery"  # the whole night ran
    assert "not valid UTF-8" in caplog.text
    assert "Zhang" not in caplog.text  # the customer's text never reaches the log


@pytest.mark.postgres
def test_a_sql_ascii_postgresql_database_runs_the_night(
    postgres_url: URL, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A database created with ENCODING 'SQL_ASCII' hands text over as bytes: every
    command used to fail with "TypeError: cannot use a string pattern on a bytes-like
    object". Its text is now read as UTF-8 (broken bytes as U+FFFD, one warning)."""
    name = f"crm_sqlascii_{uuid.uuid4().hex[:12]}"
    admin = make_engine(postgres_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(
            text(
                f"create database {name} encoding 'SQL_ASCII' lc_collate 'C' lc_ctype 'C' "
                "template template0"
            )
        )
    url = postgres_url.set(database=name).difference_update_query(["options"])
    try:
        folder = demo_folder(tmp_path / "company", url)
        engine = make_engine(url)
        with engine.begin() as conn:  # a Latin-1 name, as an old import wrote it
            customer = conn.execute(text("select min(customer_id) from customers")).scalar_one()
            conn.execute(
                text(
                    "update customers set name = convert_from('\\x5a68e56e67', 'SQL_ASCII') "
                    "where customer_id = :c"
                ),
                {"c": customer},
            )
        engine.dispose()

        result = run_nightly(folder_settings(folder, url), DEMO_DAY)

        assert result.stages[-1].name == "delivery"
        assert "not valid UTF-8" in caplog.text
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"drop database if exists {name} with (force)"))
        admin.dispose()
