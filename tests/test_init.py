"""``init``: the starter settings file and mapping templates for a new company."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.timeouts import hang_bound

from crm_batch import resources
from crm_batch.app.starter import MAPPING_FILES, MAPPING_FOLDER, starter_files, write_starter
from crm_batch.config import CONFIG_FILE_NAME, load_settings
from crm_batch.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_writes_a_valid_settings_file_and_the_shipped_mapping_templates(tmp_path):
    company = 'Zhang "Tea" \\ Co.\n'
    written = write_starter(tmp_path / "acme", company)
    assert written == starter_files(tmp_path / "acme")
    for name in MAPPING_FILES:
        shipped = (resources.SQL_DIR / "source" / name).read_text(encoding="utf-8")
        assert (tmp_path / "acme" / MAPPING_FOLDER / name).read_text(encoding="utf-8") == shipped
    settings = load_settings(str(tmp_path / "acme" / CONFIG_FILE_NAME))
    assert settings.company_name == 'Zhang "Tea" \\ Co.'
    assert settings.source_dir == tmp_path / "acme" / MAPPING_FOLDER
    assert settings.data_dir == tmp_path / "acme" / "var"
    # the commented examples name keys the settings file really has
    text = written[0].read_text(encoding="utf-8")
    for key in ("[database]", "[source]", "[state]", "# folder = ", "# url = "):
        assert key in text


def test_refuses_to_overwrite_and_then_writes_nothing(tmp_path):
    (tmp_path / CONFIG_FILE_NAME).write_text("# mine\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=CONFIG_FILE_NAME):
        write_starter(tmp_path, "Acme")
    assert (tmp_path / CONFIG_FILE_NAME).read_text(encoding="utf-8") == "# mine\n"
    assert not (tmp_path / MAPPING_FOLDER).exists()


def test_an_empty_company_name_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="company"):
        write_starter(tmp_path, "  ")


def test_the_command_names_the_files_and_exits_3_on_a_second_run(tmp_path):
    command = [sys.executable, str(ROOT / "run_batch.py"), "init", str(tmp_path / "shop")]
    run = {"capture_output": True, "text": True, "timeout": hang_bound(60), "check": False}
    first = subprocess.run(command, **run)
    assert first.returncode == 0, first.stderr
    assert str(tmp_path / "shop" / CONFIG_FILE_NAME) in first.stdout
    assert "check-source" in first.stdout
    settings = load_settings(str(tmp_path / "shop" / CONFIG_FILE_NAME))
    assert settings.company_name == "shop"
    second = subprocess.run(command, **run)
    assert second.returncode == 3
    assert "not overwriting" in second.stderr
