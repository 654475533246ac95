"""The nightly workbook refresh and the ``harvest`` command, on real files.

A small demo company (tests/fixtures/batch.py) gives a real KPI run; workbooks are built
by the real builder, edited with openpyxl the way a staff member edits in Excel (typing,
sorting, filtering, hiding rows) and refreshed. Faults are injected by wrapping the
builder's functions as the refresh module sees them (the file system and openpyxl are
real).
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from fixtures.batch import DEMO_DAY, demo_folder, folder_settings
from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from test_cli import run_cli
from test_workbook_harvest import FORMULA_NOTE, HTML_NOTE

from crm_batch.app.engines import build_engine
from crm_batch.app.followups import followups_table, store_followups
from crm_batch.app.kpis import KpiRun, run_kpis, snapshot_period
from crm_batch.config import Settings, WorkbookSettings
from crm_batch.excel import layout, refresh
from crm_batch.excel.cells import MAX_CELL_CHARS, WorkbookError
from crm_batch.excel.harvest import read_staff_inputs
from crm_batch.excel.staff_rows import parse_staff_row
from crm_batch.excel.workbook_files import prune_backups, team_workbook_paths
from crm_batch.files import file_stem
from crm_batch.jobs.workbooks import harvest_all, refresh_team_workbooks

pytestmark = pytest.mark.filterwarnings("ignore:.*extension is not supported:UserWarning")

T1 = datetime(2026, 7, 1, 3, 0, 0)
T2 = datetime(2026, 7, 2, 3, 0, 0)
T3 = datetime(2026, 7, 3, 3, 0, 0)
INVALID_OUTCOME = "maybe later"


class Demo:
    """The module's demo company: folder, settings, engine, KPI run, two small teams."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.settings = folder_settings(folder)
        self.engine = build_engine(self.settings)
        self.run: KpiRun = run_kpis(
            self.settings,
            self.engine,
            DEMO_DAY,
            snapshot_period(DEMO_DAY),
            all_teams=True,
        )
        sizes = sorted(
            (len(report.customers), team)
            for team, report in self.run.reports.items()
            if team is not None and len(report.customers) >= 8
        )
        self.team, self.other = sizes[0][1], sizes[1][1]

    def customers(self, team: str) -> dict[str, str]:
        """customer id -> name of the team's customers with plain names, by id."""
        table = self.run.reports[team].customers
        return {
            str(cid): name
            for cid, name in zip(table["customer_id"], table["name"], strict=True)
            if isinstance(name, str) and name.isprintable() and len(name) < 100
        }


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    folder = demo_folder(tmp_path_factory.mktemp("refresh_demo"))
    made = Demo(folder)
    yield made
    made.engine.dispose()


@pytest.fixture
def env(demo: Demo, tmp_path: Path) -> Demo:
    """The demo with an empty workbooks folder of this test and no stored follow-ups."""
    table = followups_table()
    table.create(demo.engine, checkfirst=True)
    with demo.engine.begin() as conn:
        conn.execute(delete(table))
    demo.settings = demo.settings.model_copy(update={"workbooks_dir": tmp_path / "wb"})
    return demo


def nightly(env: Demo, now: datetime, teams: list[str] | None = None, **kw: Any):
    return refresh_team_workbooks(
        env.settings, env.engine, env.run, now, teams=teams or [env.team], **kw
    )


def workbook(env: Demo, team: str | None = None) -> Path:
    return team_workbook_paths(env.settings, [team or env.team])[team or env.team]


def staff_edit(
    path: Path,
    edits: Mapping[str, Mapping[str, object]],
    *,
    shuffle: bool = True,
    retype_ids: Mapping[str, str] | None = None,
) -> None:
    """Type ``edits`` (customer id -> {column key: value}) into the Follow-ups table as a
    staff member would, after sorting the table by customer name descending, filtering it
    by owner and hiding a row; ``retype_ids`` overwrites customer id cells."""
    book = openpyxl.load_workbook(path, keep_vba=True)
    sheet = next(ws for ws in book.worksheets if layout.TABLE_NAMES["followups"] in ws.tables)
    table = sheet.tables[layout.TABLE_NAMES["followups"]]
    min_col, min_row, max_col, max_row = openpyxl.utils.cell.range_boundaries(table.ref)
    headers = [sheet.cell(min_row, c).value for c in range(min_col, max_col + 1)]
    col = {layout.header_key("followups", h): min_col + i for i, h in enumerate(headers)}
    first = min_row + 1
    if shuffle:
        body = [
            [sheet.cell(r, c).value for c in range(min_col, max_col + 1)]
            for r in range(first, max_row + 1)
        ]
        body.sort(key=lambda values: str(values[col["customer_name"] - min_col]), reverse=True)
        for r, values in enumerate(body, start=first):
            for c, value in enumerate(values, start=min_col):
                sheet.cell(r, c).value = value
        table.autoFilter.add_filter_column(col["owner"] - min_col, ["nobody", "吴昊"])
        sheet.row_dimensions[first + 1].hidden = True
    for r in range(first, max_row + 1):
        cid = str(sheet.cell(r, col["customer_id"]).value)
        for key, value in edits.get(cid, {}).items():
            sheet.cell(r, col[key]).value = value
        if retype_ids and cid in retype_ids:
            sheet.cell(r, col["customer_id"]).value = retype_ids[cid]
    temporary = path.with_name("excel-save.tmp")
    book.save(temporary)
    os.replace(temporary, path)


def rows_by_id(path: Path) -> dict[str, Any]:
    return {row.customer_id: row for row in read_staff_inputs(path).rows}


def stored(engine: Engine) -> dict[str, list[dict]]:
    table = followups_table()
    result: dict[str, list[dict]] = {}
    with engine.connect() as conn:
        for row in conn.execute(select(table).order_by(table.c.entered_at)):
            result.setdefault(row.customer_id, []).append(dict(row._mapping))
    return result


def files(folder: Path) -> set[str]:
    return {path.name for path in folder.iterdir()}


# -- staff inputs survive ---------------------------------------------------------------------


def test_staff_inputs_survive_sorting_filtering_and_nightly_rebuilds(env: Demo) -> None:
    first = nightly(env, T1).teams[0]
    path = workbook(env)
    assert (first.written, first.kept_reason, first.backup) == (path, None, None)
    names = env.customers(env.team)
    c0, c1, c2, c3, c4, c5 = sorted(names)[:6]
    # a 40,000-character note stored by another program (no cell holds that much)
    long_note = "长" * 40_000
    seeded = parse_staff_row({"customer_id": c2, "note": long_note}, 0, "zh-CN")
    store_followups(env.engine, env.team, [seeded], "import", T1)
    staff_edit(
        path,
        {
            c0: {
                "outcome": "有意向",
                "note": FORMULA_NOTE,
                "next_contact_date": datetime(2026, 7, 15),
                "entered_by": "王芳",
            },
            c1: {"outcome": "Ordered", "note": HTML_NOTE},
            c3: {"outcome": INVALID_OUTCOME, "note": "keep me"},
            c4: {"next_contact_date": "2026/8/1", "entered_by": "李"},
            c5: {"outcome": "Call back", "next_contact_date": "next tuesday"},
        },
    )
    edited = path.read_bytes()

    second = nightly(env, T2).teams[0]
    assert second.kept_reason is None
    assert (second.harvested, second.stored.inserted, second.stored.rejected) == (5, 3, 2)
    assert second.backup is not None
    assert second.backup.read_bytes() == edited
    db = stored(env.engine)
    assert sorted(db) == sorted([c0, c1, c2, c4])
    assert (db[c0][0]["outcome"], db[c0][0]["note"]) == ("interested", FORMULA_NOTE)
    assert db[c0][0]["next_contact_date"] == date(2026, 7, 15)
    assert db[c0][0]["entered_by"] == "王芳"
    assert db[c0][0]["entered_at"] == T2
    assert (db[c1][0]["outcome"], db[c1][0]["note"]) == ("ordered", HTML_NOTE)
    assert db[c2][0]["note"] == long_note  # stored whole; the cell shows it cut
    assert db[c4][0]["next_contact_date"] == date(2026, 8, 1)

    def check_workbook() -> None:
        rows = rows_by_id(path)
        for cid in (c0, c1, c2, c3, c4, c5):
            assert rows[cid].raw["customer_name"] == names[cid], cid  # on the right customer
        assert rows[c0].note == FORMULA_NOTE
        assert rows[c0].outcome == "interested"
        assert rows[c0].raw["saved_at"] == T2
        assert rows[c1].note == HTML_NOTE
        assert rows[c2].note is not None
        assert len(rows[c2].note) <= MAX_CELL_CHARS
        assert rows[c2].note.startswith("长" * 30_000)
        assert rows[c2].note.endswith(("[truncated]", "[已截断]"))
        assert rows[c4].next_contact_date == date(2026, 8, 1)
        assert rows[c3].raw["outcome"] == INVALID_OUTCOME  # kept as typed
        assert rows[c3].note == "keep me"
        assert rows[c3].raw["saved_at"] is None
        assert INVALID_OUTCOME in str(rows[c3].raw["save_problem"])
        assert rows[c5].raw["next_contact_date"] == "next tuesday"  # kept as typed
        assert rows[c5].outcome == "call_back"
        assert "next tuesday" in str(rows[c5].raw["save_problem"])
        assert set(rows) == {c0, c1, c2, c3, c4, c5}

    check_workbook()
    # the formula-looking note is a text cell, not a formula
    book = openpyxl.load_workbook(path, read_only=False)
    cells = [c for ws in book.worksheets for row in ws.iter_rows() for c in row]
    formula_cells = [c for c in cells if c.value == FORMULA_NOTE]
    assert formula_cells
    assert all(c.data_type == "s" for c in formula_cells)

    third = nightly(env, T3).teams[0]
    # the cut note read back is recognised as the stored one: nothing is stored twice
    assert (third.harvested, third.stored.inserted, third.stored.rejected) == (6, 0, 2)
    assert stored(env.engine) == db
    check_workbook()

    # a saved row edited into something invalid is no longer shown as saved
    staff_edit(path, {c0: {"next_contact_date": "soon"}})
    fourth = nightly(env, datetime(2026, 7, 4, 3, 0, 0)).teams[0]
    assert fourth.stored.rejected == 3
    row = rows_by_id(path)[c0]
    assert row.raw["saved_at"] is None
    assert "soon" in str(row.raw["save_problem"])
    assert row.note == FORMULA_NOTE


# -- the old workbook is never overwritten unsafely ------------------------------------------


@pytest.mark.parametrize("lock_name", ["~${name}", ".~lock.{name}#"])
def test_an_open_workbook_is_left_alone_and_the_new_one_written_beside(
    env: Demo, lock_name: str
) -> None:
    nightly(env, T1)
    path = workbook(env)
    customer = sorted(env.customers(env.team))[0]
    staff_edit(path, {customer: {"note": "typed while open"}}, shuffle=False)
    (path.parent / lock_name.format(name=path.name)).write_bytes(b"owner")
    before = path.read_bytes()

    result = nightly(env, T2).teams[0]
    assert path.read_bytes() == before
    beside = path.with_name(f"{path.stem} 2026-07-02 0300.xlsm")
    assert result.written == beside
    assert result.kept_reason is not None
    assert "open" in result.kept_reason
    assert result.backup is None
    assert rows_by_id(beside)[customer].note == "typed while open"
    assert read_staff_inputs(beside).team == env.team
    assert stored(env.engine)[customer][0]["note"] == "typed while open"
    assert not (path.parent / "backup").exists()


def test_a_stale_owner_file_is_a_problem_and_dated_copies_do_not_pile_up(env: Demo) -> None:
    """Was: an Excel owner file ~$X.xlsm left behind gave a green night and a new dated
    copy every night, forever. Now each night names the team, the file and what to do,
    and only the newest ``keep_backups`` dated copies stay beside the workbook (older
    ones move to the backup folder, where they rotate with the backups)."""
    env.settings = env.settings.model_copy(update={"workbooks": WorkbookSettings(keep_backups=2)})
    nightly(env, T1)
    path = workbook(env)
    (path.parent / f"~${path.name}").write_bytes(b"owner")
    nights = [datetime(2026, 7, day, 3, 0) for day in range(2, 7)]
    reports = [nightly(env, night) for night in nights]
    beside = sorted(p.name for p in path.parent.glob(f"{path.stem} 2026-*.xlsm"))
    assert beside == [f"{path.stem} 2026-07-05 0300.xlsm", f"{path.stem} 2026-07-06 0300.xlsm"]
    moved = sorted(p.name for p in (path.parent / "backup").glob(f"{path.stem} 2026-07-0*"))
    # 07-02 rotated out of the backups (keep 2); 07-03 and 07-04 wait there
    assert moved == [f"{path.stem} 2026-07-0{day} 030000.xlsm" for day in (3, 4)]
    for report in reports:
        [problem] = report.problems
        assert problem.team == env.team
        assert problem.line().startswith(
            f"team '{env.team}': {path.name} was NOT replaced (it is open (~${path.name} "
            "exists)); tonight's workbook is "
        )
        assert problem.action.endswith(
            f"if nobody has it open, delete ~${path.name} (left behind when Excel stopped)"
        )


def test_a_workbook_saved_during_the_rebuild_is_not_overwritten(
    env: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    nightly(env, T1)
    path = workbook(env)
    late = sorted(env.customers(env.team))[1]
    real_build = refresh.build_team_workbook

    def build_while_staff_saves(*args: Any, **kwargs: Any):
        staff_edit(path, {late: {"note": "saved during the night"}}, shuffle=False)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(refresh, "build_team_workbook", build_while_staff_saves)
    result = nightly(env, T2).teams[0]
    saved_by_staff = path.read_bytes()
    assert rows_by_id(path)[late].note == "saved during the night"
    assert result.kept_reason is not None
    assert "saved while" in result.kept_reason
    assert result.written == path.with_name(f"{path.stem} 2026-07-02 0300.xlsm")
    assert result.written.is_file()
    assert late not in stored(env.engine)  # read before the save: harvested next night

    monkeypatch.setattr(refresh, "build_team_workbook", real_build)
    assert path.read_bytes() == saved_by_staff
    again = nightly(env, T3).teams[0]
    assert again.kept_reason is None
    assert stored(env.engine)[late][0]["note"] == "saved during the night"
    assert rows_by_id(path)[late].note == "saved during the night"


class Boom(RuntimeError):
    pass


def _crash_after_build(monkeypatch: pytest.MonkeyPatch) -> str:
    real = refresh.build_team_workbook

    def build_then_die(*args: Any, **kwargs: Any):
        real(*args, **kwargs)
        assert any(p.name.endswith(".tmp.xlsm") for p in Path(args[1]).parent.iterdir())
        raise Boom("killed after the temporary workbook was written")

    monkeypatch.setattr(refresh, "build_team_workbook", build_then_die)
    return "Boom: killed after the temporary workbook was written"


def _crash_in_verify(monkeypatch: pytest.MonkeyPatch) -> str:
    def bad_read_back(path: Path, summary: Any) -> None:
        raise WorkbookError(f"workbook {path} does not read back as written")

    monkeypatch.setattr(refresh, "verify_workbook", bad_read_back)
    return "does not read back as written"


def _crash_before_replace(monkeypatch: pytest.MonkeyPatch) -> str:
    def no_permissions(source: Path, target: Path) -> None:
        raise Boom("disk gone before the replace")

    monkeypatch.setattr(refresh, "copy_permissions", no_permissions)
    return "Boom: disk gone before the replace"


@pytest.mark.parametrize(
    "crash", [_crash_after_build, _crash_in_verify, _crash_before_replace], ids=lambda f: f.__name__
)
def test_a_crash_leaves_the_old_workbook_byte_identical(
    env: Demo,
    monkeypatch: pytest.MonkeyPatch,
    crash: Callable[[pytest.MonkeyPatch], str],
) -> None:
    """A crash at any point of one team's refresh is that team's failure: reported with
    the error, the old workbook byte for byte as it was, nothing left behind."""
    nightly(env, T1)
    path = workbook(env)
    customer = sorted(env.customers(env.team))[0]
    staff_edit(path, {customer: {"note": "precious"}})
    before = path.read_bytes()
    listing = files(path.parent)

    expected = crash(monkeypatch)
    report = nightly(env, T2)
    assert report.teams == ()
    [problem] = report.problems
    assert problem.team == env.team
    assert expected in problem.what
    assert f"its workbook {path.name} could not be refreshed" in problem.what
    assert path.read_bytes() == before
    leftovers = files(path.parent) - listing - {"backup"}
    assert leftovers == set()
    # the staff input was stored before the build: nothing is lost even after a crash
    assert stored(env.engine)[customer][0]["note"] == "precious"


def test_backups_keep_the_last_n_with_the_workbooks_permissions(env: Demo) -> None:
    env.settings = env.settings.model_copy(update={"workbooks": WorkbookSettings(keep_backups=2)})
    nightly(env, T1)
    path = workbook(env)
    os.chmod(path, 0o640)
    backups = path.parent / "backup"
    backups.mkdir()
    strangers = {
        f"{env.other} 2026-01-01 000000.xlsm",  # another team's backup
        f"{path.stem} 2 2026-01-01 000000.xlsm",  # a team whose name extends this one
        f"{path.stem} notes.xlsm",  # not a backup name
    }
    for name in strangers:
        (backups / name).write_bytes(b"x")
    nights = [datetime(2026, 7, day, 3, 0, 0) for day in (2, 3, 4, 5)]
    contents = []
    for night in nights:
        contents.append(path.read_bytes())
        nightly(env, night)
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
    kept = files(backups) - strangers
    assert kept == {f"{path.stem} 2026-07-04 030000.xlsm", f"{path.stem} 2026-07-05 030000.xlsm"}
    assert (backups / f"{path.stem} 2026-07-05 030000.xlsm").read_bytes() == contents[-1]
    for name in kept:
        assert stat.S_IMODE((backups / name).stat().st_mode) == 0o640
    assert strangers <= files(backups)
    assert prune_backups(backups, path.stem, 1) == [backups / f"{path.stem} 2026-07-04 030000.xlsm"]


def test_notes_of_customers_who_left_the_team_go_to_orphaned_notes(env: Demo) -> None:
    nightly(env, T1, teams=[env.team, env.other])
    path = workbook(env)
    ours = sorted(env.customers(env.team))
    moved = sorted(env.customers(env.other))[0]
    # the rows of two customers now hold a customer of the other team (as if moved there
    # since the workbook was built) and a customer that no longer exists
    staff_edit(
        path,
        {
            ours[0]: {"outcome": "已联系上", "note": "moved customer's note"},
            ours[1]: {"outcome": INVALID_OUTCOME, "note": "gone customer's note"},
            ours[2]: {"note": "stays here"},
        },
        retype_ids={ours[0]: moved, ours[1]: "NO-SUCH-CUSTOMER"},
    )
    result = nightly(env, T2, teams=[env.team, env.other])
    assert result.teams[0].orphaned == 2
    harvested = read_staff_inputs(path)
    orphans = {row.customer_id: row for row in harvested.orphaned_rows}
    assert set(orphans) == {moved, "NO-SUCH-CUSTOMER"}
    assert orphans[moved].raw["current_team"] == env.other
    assert orphans[moved].raw["customer_name"] == env.customers(env.other)[moved]
    assert orphans[moved].note == "moved customer's note"
    assert orphans["NO-SUCH-CUSTOMER"].raw["current_team"] is None
    assert orphans["NO-SUCH-CUSTOMER"].raw["outcome"] == INVALID_OUTCOME
    assert orphans["NO-SUCH-CUSTOMER"].note == "gone customer's note"
    assert rows_by_id(path)[ours[2]].note == "stays here"
    # the moved customer's note is stored and shows in the other team's workbook
    assert stored(env.engine)[moved][0]["note"] == "moved customer's note"
    theirs = rows_by_id(workbook(env, env.other))
    assert theirs[moved].note == "moved customer's note"
    assert theirs[moved].outcome == "reached"
    # next night: the unsaved orphan is carried on, the saved one lives with its team
    nightly(env, T3, teams=[env.team])
    assert {r.customer_id for r in read_staff_inputs(path).orphaned_rows} == {"NO-SUCH-CUSTOMER"}


def test_the_nightly_rebuild_places_rows_through_the_one_merge_and_keeps_every_row(
    env: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crm_batch.excel import staff_merge

    nightly(env, T1)
    path = workbook(env)
    ours = sorted(env.customers(env.team))
    # two unsaved rows of one customer (a second row typed for ours[0]) and the note of
    # a customer who is gone
    staff_edit(
        path,
        {
            ours[0]: {"outcome": INVALID_OUTCOME, "note": "one of two"},
            ours[1]: {"outcome": INVALID_OUTCOME, "note": "two of two"},
            ours[2]: {"note": "customer is gone"},
        },
        shuffle=False,
        retype_ids={ours[1]: ours[0], ours[2]: "GONE-1"},
    )
    typed = {row.note: row.sheet_row for row in read_staff_inputs(path).rows}
    last_of_two = max(("one of two", "two of two"), key=typed.__getitem__)
    calls: list[Any] = []
    real = staff_merge.merge_staff_inputs

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(real(*args, **kwargs))
        return calls[-1]

    monkeypatch.setattr(staff_merge, "merge_staff_inputs", spy)
    result = nightly(env, T2).teams[0]

    (merged,) = calls
    assert merged.shown[ours[0]].note == last_of_two  # the last unsaved row keeps the row
    assert result.orphaned == 2
    rebuilt = read_staff_inputs(path)
    assert rows_by_id(path)[ours[0]].note == last_of_two
    kept = [row.note for row in (*rebuilt.rows, *rebuilt.orphaned_rows)]
    assert set(typed) <= set(kept)  # every typed row is still in the workbook
    assert stored(env.engine)["GONE-1"][0]["note"] == "customer is gone"


def test_an_unreadable_workbook_is_left_alone_with_the_reason(env: Demo) -> None:
    nightly(env, T1)
    path = workbook(env)
    book = openpyxl.load_workbook(path, keep_vba=True)
    sheet = next(ws for ws in book.worksheets if layout.TABLE_NAMES["followups"] in ws.tables)
    table = sheet.tables[layout.TABLE_NAMES["followups"]]
    for index, cell in enumerate(sheet[1]):
        if layout.header_key("followups", cell.value) == "note":
            cell.value = "我的备注"
            table.tableColumns[index].name = "我的备注"
    book.save(path)
    before = path.read_bytes()
    result = nightly(env, T2).teams[0]
    assert path.read_bytes() == before
    assert result.kept_reason is not None
    assert "备注" in result.kept_reason
    assert "renamed or deleted" in result.kept_reason
    assert result.written.is_file()
    assert result.written != path


# -- file names ------------------------------------------------------------------------------


def test_workbook_file_names_are_safe_and_distinct(tmp_path: Path) -> None:
    assert file_stem("Shanghai") == "Shanghai"
    assert file_stem("华东一组") == "华东一组"
    assert file_stem("Team A") == "Team A"
    for unsafe in ("Team A/B", "CON", "a:b", " padded ", "dots.", "..", "x\ty", "~$x", "a" * 90):
        stem = file_stem(unsafe)
        assert stem != unsafe
        assert not set(stem) & set('<>:"/\\|?*\t')
        assert len(stem) <= 70
    assert file_stem("Team A/B") != file_stem("Team A:B")
    settings = Settings.model_construct(workbooks_dir=tmp_path)
    paths = team_workbook_paths(settings, ["East", "east", "West"])
    assert paths["West"] == tmp_path / "West.xlsm"
    assert paths["East"] != paths["east"]
    assert paths["East"].name.casefold() != paths["east"].name.casefold()


# -- the harvest command ---------------------------------------------------------------------


@pytest.mark.slow
def test_harvest_command_end_to_end(env: Demo) -> None:
    nightly(env, T1, teams=[env.team, env.other])
    path = workbook(env)
    ours = sorted(env.customers(env.team))
    staff_edit(
        path,
        {
            ours[0]: {"outcome": "无人接听", "note": "call again"},
            ours[1]: {"outcome": INVALID_OUTCOME},
        },
    )
    folder = path.parent
    (folder / "backup").mkdir()
    shutil.copy(path, folder / "backup" / "old copy.xlsm")  # backups are not harvested
    plain = openpyxl.Workbook()
    plain.save(folder / "someone else's.xlsm")  # not a team workbook: skipped
    env.engine.dispose()  # DuckDB: one process at a time holds the file
    cli_env = {"CRM_BATCH_WORKBOOKS_DIR": str(folder)}
    config = str(env.folder / "crm_batch.toml")

    first = run_cli("harvest", "--config", config, cwd=env.folder, env=cli_env)
    assert first.returncode == 0, first.stderr
    assert f"{path.name} ({env.team}): 2 rows, 1 new, 0 already stored, 1 with problems" in (
        first.stdout
    )
    assert "2 workbooks harvested, 1 follow-ups stored, 1 other .xlsm files skipped" in (
        first.stdout
    )
    second = harvest_all(env.settings, env.engine, T3)  # the same rows again: stored once
    got = sorted((f.path.name, f.stored.inserted, f.stored.already_stored) for f in second.files)
    assert got == sorted([(path.name, 0, 1), (workbook(env, env.other).name, 0, 0)])
    assert second.skipped == (folder / "someone else's.xlsm",)
    # the nightly harvest stage leaves the current team workbooks to the refresh
    only_others = harvest_all(env.settings, env.engine, T3, skip=[path])
    assert [f.path.name for f in only_others.files] == [workbook(env, env.other).name]
    db = stored(env.engine)
    assert list(db) == [ours[0]]
    assert db[ours[0]][0]["outcome"] == "no_answer"
    assert db[ours[0]][0]["source_workbook"] == path.name

    # a workbook whose Note column was renamed fails the command; the others are stored
    broken = folder / "broken copy.xlsm"
    shutil.copy(path, broken)
    book = openpyxl.load_workbook(broken, keep_vba=True)
    sheet = next(ws for ws in book.worksheets if layout.TABLE_NAMES["followups"] in ws.tables)
    table = sheet.tables[layout.TABLE_NAMES["followups"]]
    for index, cell in enumerate(sheet[1]):
        if layout.header_key("followups", cell.value) == "note":
            cell.value = "Remarks"
            table.tableColumns[index].name = "Remarks"
    book.save(broken)
    staff_edit(path, {ours[2]: {"note": "another"}}, shuffle=False)
    env.engine.dispose()
    third = run_cli("harvest", "--config", config, cwd=env.folder, env=cli_env)
    assert third.returncode == 4
    assert "broken copy.xlsm" in third.stderr
    assert "renamed or deleted" in third.stderr
    assert "broken copy.xlsm: FAILED" in third.stdout
    assert ours[2] in stored(env.engine)


@pytest.mark.slow
def test_the_nightly_stages_harvest_and_refresh_every_team(env: Demo) -> None:
    from crm_batch.jobs.pipeline import NIGHTLY_STAGES, run_nightly

    nightly(env, T1)
    path = workbook(env)
    customer = sorted(env.customers(env.team))[0]
    staff_edit(path, {customer: {"outcome": "约定回电", "note": "nightly"}})
    env.engine.dispose()
    result = run_nightly(env.settings, DEMO_DAY, stages=NIGHTLY_STAGES[:4])
    by_name = {stage.name: stage for stage in result.stages}
    teams = [team for team in env.run.reports if team is not None]
    # the team's own workbook is harvested once, by the workbooks stage, from the bytes
    # it replaces; the harvest stage reads only the folder's other workbooks
    assert by_name["harvest"].rows == 0
    assert by_name["workbooks"].rows == len(teams)
    assert {p.name for p in env.settings.workbooks_dir.glob("*.xlsm")} == {
        workbook(env, team).name for team in teams
    }
    assert rows_by_id(path)[customer].note == "nightly"
    assert stored(env.engine)[customer][0]["outcome"] == "call_back"


def test_a_file_of_another_team_at_the_teams_path_is_left_alone(env: Demo) -> None:
    nightly(env, T1, teams=[env.other])
    theirs = workbook(env, env.other)
    customer = sorted(env.customers(env.other))[0]
    staff_edit(theirs, {customer: {"note": "copied around"}}, shuffle=False)
    path = workbook(env)
    path.parent.mkdir(exist_ok=True)
    shutil.copy(theirs, path)  # someone saved the other team's workbook under our name
    before = path.read_bytes()
    result = nightly(env, T2).teams[0]
    assert path.read_bytes() == before
    assert result.kept_reason == f"it is the workbook of team {env.other!r}"
    assert read_staff_inputs(result.written).team == env.team
    assert stored(env.engine)[customer][0]["note"] == "copied around"


def test_merge_keeps_one_row_per_customer_and_never_drops_unsaved_rows() -> None:
    import pandas as pd

    from crm_batch.app.followups import StoreResult, with_saved_at
    from crm_batch.excel.staff_merge import merge_staff_inputs, orphaned_notes

    cells = [
        {"customer_id": "1", "note": "saved first"},
        {"customer_id": "1", "outcome": "bad 1"},
        {"customer_id": "1", "outcome": "bad 2"},
        {"customer_id": "1", "note": "saved later"},
        {"customer_id": "2", "note": "a"},
        {"customer_id": "2", "note": "b"},
        {"customer_id": "9", "note": "left the team", "next_contact_date": "whenever"},
    ]
    rows = [parse_staff_row(c, i + 2, "en") for i, c in enumerate(cells)]
    previous_orphans = [
        parse_staff_row({"customer_id": "7", "outcome": "still bad"}, 2, "en"),
        parse_staff_row({"customer_id": "8", "note": "saved orphan"}, 3, "en"),
    ]
    every = [*rows, *previous_orphans]
    stored_at = tuple(None if r.problem else T1 for r in every)
    saved = with_saved_at(every, StoreResult(5, 0, 4, stored_at))
    customers = pd.DataFrame(
        {"name": ["One", "Two", "Nine"], "team": ["T", "T", "U"]},
        index=pd.Index(["1", "2", "9"], dtype="string", name="customer_id"),
    )
    merged = merge_staff_inputs(saved[: len(rows)], {"1", "2"}, orphaned_before=saved[len(rows) :])
    inputs = merged.shown
    orphaned = orphaned_notes(merged.orphaned, customers)
    assert inputs["1"].raw["outcome"] == "bad 2"  # the last unsaved row stays on the sheet
    assert inputs["1"].raw["saved_at"] is None
    assert inputs["2"].note == "b"
    assert inputs["2"].raw["saved_at"] == T1
    # every row is placed: shown, orphaned, or stored (and then in the database)
    placed = [*merged.shown.values(), *merged.orphaned, *merged.stored]
    assert sorted(r.sheet_row for r in placed if r.customer_id not in {"7", "8"}) == list(
        range(2, 9)
    )
    assert all(r.raw["saved_at"] == T1 for r in merged.stored)
    by_note = {(o.customer_id, o.outcome, o.note, o.current_team) for o in orphaned}
    assert by_note == {
        ("1", "bad 1", None, "T"),  # a further unsaved row of the same customer
        ("9", None, "left the team\n[whenever]", "U"),  # the date as typed is kept
        ("7", "still bad", None, None),  # unsaved, from the previous Orphaned notes
    }
