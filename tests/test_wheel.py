"""crm-batch installs as a wheel: the data folders ship inside it and are found there.

:mod:`crm_batch.resources` is checked on made-up package folders (fast). The slow test
builds the wheel from a copy of the checkout, installs it into a fresh virtual
environment and runs ``crm-batch demo`` in a folder far from the checkout, as a user
who ran ``pip install crm_batch-*.whl`` would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from crm_batch import resources
from crm_batch.resources import DATA_FOLDERS, PACKAGE_DATA, locate

REPO = Path(__file__).resolve().parents[1]
#: Hang bounds for a busy 2-core machine (a build takes ~10 s and the demo ~1 min idle).
BUILD_TIMEOUT = 900
DEMO_TIMEOUT = 1800
#: Not copied to the build folder: local state that must never reach a wheel.
NOT_BUILT = (".git", ".venv", "build", "dist", "*.egg-info", "var", "output", "__pycache__")
NOT_BUILT += (".ruff_cache", ".pytest_cache", ".import_linter_cache")


def make_package(root: Path, *, shipped: bool, checkout: bool) -> Path:
    """A fake ``crm_batch`` folder under ``root`` with the data folders inside it
    (``shipped``, as in a wheel) and/or beside it (``checkout``)."""
    package = root / "crm_batch"
    package.mkdir(parents=True)
    for folder in DATA_FOLDERS:
        if shipped:
            (package / PACKAGE_DATA / folder).mkdir(parents=True)
        if checkout:
            (root / folder).mkdir(parents=True)
    return package


def test_an_installed_wheel_uses_its_own_copy(tmp_path: Path) -> None:
    package = make_package(tmp_path, shipped=True, checkout=True)
    for folder in DATA_FOLDERS:
        assert locate(folder, package) == package / PACKAGE_DATA / folder


def test_a_checkout_uses_its_top_level_folders(tmp_path: Path) -> None:
    package = make_package(tmp_path, shipped=False, checkout=True)
    for folder in DATA_FOLDERS:
        assert locate(folder, package) == tmp_path / folder


def test_a_broken_installation_names_where_the_folder_belongs(tmp_path: Path) -> None:
    package = make_package(tmp_path, shipped=False, checkout=False)
    assert locate("sql", package) == package / PACKAGE_DATA / "sql"


def test_only_the_shipped_folders_are_located() -> None:
    with pytest.raises(ValueError, match="deploy"):
        locate("deploy")


def test_this_checkout_reads_its_own_folders() -> None:
    """Tests run on the checkout (editable install or PYTHONPATH): no copies involved."""
    assert resources.SQL_DIR == REPO / "sql"
    assert resources.REPORT_TEMPLATES_DIR == REPO / "report_templates"
    assert resources.VBA_DIR == REPO / "workbooks" / "vba"


def test_the_sql_settings_still_override_the_shipped_queries(tmp_path: Path) -> None:
    from crm_batch.config import load_settings

    mine = tmp_path / "my_sql"
    env = {"CRM_BATCH_SQL_DIR": str(mine)}
    assert load_settings(environ={}, cwd=tmp_path).sql_dir == resources.SQL_DIR
    assert load_settings(environ=env, cwd=tmp_path).sql_dir == mine


def data_files(root: Path) -> set[str]:
    """Every file of the data folders under ``root``, as relative POSIX paths."""
    return {
        path.relative_to(root).as_posix()
        for folder in DATA_FOLDERS
        for path in (root / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def build_wheel(target: Path) -> Path:
    """``pip wheel`` of a clean copy of the checkout (a build in the checkout itself would
    leave build/ behind, whose stale files setuptools copies into later wheels)."""
    source = target / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*NOT_BUILT))
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(target), "."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-5000:]
    # -v shows setuptools' own warnings, e.g. "`project.license` as a TOML table is deprecated"
    deprecated = [line for line in output.splitlines() if "deprecat" in line.lower()]
    assert deprecated == []
    [wheel] = target.glob("crm_batch-*.whl")
    return wheel


def fresh_venv(folder: Path, wheel: Path) -> Path:
    """A new virtual environment with the wheel installed; returns its bin folder.

    The wheel's dependencies are borrowed from the environment running the tests (a
    ``.pth`` line after the venv's own site-packages) instead of being downloaded again:
    the wheel itself, its entry point and its data are what is tested here. The borrowed
    folder's own ``.pth`` files (e.g. an editable install of the checkout) are not run.
    """
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(folder)],
        check=True,
        timeout=BUILD_TIMEOUT,
    )
    python = folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=BUILD_TIMEOUT,
    ).stdout.strip()
    borrowed = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(site, "zz_borrowed_dependencies.pth").write_text(
        "".join(f"{path}\n" for path in sorted(borrowed)), encoding="utf-8"
    )
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps"]
    done = subprocess.run(
        [*install, "--no-index", "--quiet", str(wheel)],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return python.parent


def outside_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a user far from the checkout: fresh HOME and Matplotlib cache,
    no PYTHONPATH and no CRM_BATCH_* settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CRM_BATCH_", "PYTHON", "VIRTUAL_ENV"))
    }
    for name, variable in (("home", "HOME"), ("mpl", "MPLCONFIGDIR")):
        (tmp_path / name).mkdir()
        env[variable] = str(tmp_path / name)
    return env


@pytest.mark.slow
def test_the_wheel_installs_and_runs_the_demo_from_an_empty_folder(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "dist")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    shipped = {f"crm_batch/{PACKAGE_DATA}/{name}" for name in data_files(REPO)}
    assert shipped <= names, sorted(shipped - names)
    assert "crm_batch/resources.py" in names

    bin_dir = fresh_venv(tmp_path / "venv", wheel)
    env = outside_env(tmp_path)
    where = subprocess.run(
        [
            bin_dir / "python",
            "-c",
            "from crm_batch import resources as r; "
            "print(r.SQL_DIR, r.REPORT_TEMPLATES_DIR, r.VBA_DIR, sep='\\n')",
        ],
        cwd=tmp_path / "home",
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=BUILD_TIMEOUT,
    )
    located = where.stdout.splitlines()
    assert len(located) == 3
    for line in located:  # the wheel's own copies, not the checkout's folders
        assert Path(line).is_relative_to((tmp_path / "venv").resolve()), line

    folder = tmp_path / "empty"
    folder.mkdir()
    # the one file in the folder: reports in one language (18 PDFs instead of 36)
    (folder / "crm_batch.toml").write_text('[reports]\nlanguages = ["en"]\n', encoding="utf-8")
    command = ["demo", "--customers", "200", "--orders", "2000", "--as-of", "2026-06-30"]
    demo = subprocess.run(
        [bin_dir / "crm-batch", *command],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT,
        check=False,
    )
    assert demo.returncode == 0, demo.stderr[-3000:]
    workbooks = sorted((folder / "output" / "workbooks").glob("*.xlsm"))
    assert len(workbooks) == 8  # one per team
    for workbook in workbooks:
        with zipfile.ZipFile(workbook) as archive:
            assert "xl/vbaProject.bin" in archive.namelist()  # the shipped Buttons.bas
    pdfs = {p.name for p in (folder / "output" / "reports").glob("*.pdf")}
    assert {"diagnosis_all_2026-06-30_en.pdf", "quarterly_all_2026Q2_en.pdf"} <= pdfs
    assert len(pdfs) == 2 * 9  # diagnosis and quarterly review x (company + 8 teams)
    for name in pdfs:
        assert (folder / "output" / "reports" / name).read_bytes().startswith(b"%PDF-")
