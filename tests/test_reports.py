"""The customer status diagnosis report: context, findings, templates, safety and PDF.

Real rendering on a small demo company (400 customers, 4,000 order rows) in a DuckDB
file. Two PDFs are rendered in the whole module (zh-CN company-wide through the library,
en for one team through the CLI) to keep it fast; everything else checks the HTML.
"""

from __future__ import annotations

import dataclasses
import gc
import html as html_lib
import math
import os
import re
import shutil
import subprocess
import sys
import warnings
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import jinja2
import pandas as pd
import pytest
from click.testing import CliRunner
from fixtures.render import InProcessPool
from fixtures.timeouts import hang_bound
from pypdf import PdfReader
from weasyprint.urls import FatalURLFetchingError

from crm_batch.app.kpis import KpiRun, run_kpis, snapshot_period
from crm_batch.cli import main
from crm_batch.config import Settings, load_settings
from crm_batch.errors import DataError
from crm_batch.i18n import numbers as fmt
from crm_batch.i18n.callsheet_texts import CALLSHEET_TEXTS
from crm_batch.i18n.messages import LANGUAGES, message, messages
from crm_batch.reports import diagnosis, findings, render
from crm_batch.reports.context import diagnosis_context
from crm_batch.reports.diagnosis import (
    diagnosis_html,
    output_paths,
    report_language,
    scope_slug,
    write_diagnosis,
)
from crm_batch.reports.display import MAX_NAME_CHARS, display_text
from crm_batch.source.db import make_engine
from crm_batch.source.demo import HOSTILE_NAMES, generate_demo, load_demo

AS_OF = date(2026, 6, 30)
TEAM = "Shanghai"
SCRIPT = "<script>alert(1)</script>"
FORMULA = "=cmd|' /C calc'!A0"
LONG_NAME = next(name for name in HOSTILE_NAMES if len(name) >= 40_000)
SECTION_KEYS = (
    "section.findings",
    "section.headline",
    "section.tiers",
    "section.pareto",
    "section.matrix",
    "section.churn",
    "section.alive",
    "section.repurchase",
    "section.referral",
    "section.service",
    "section.campaigns",
    "section.definitions",
)


# --- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small demo company in a DuckDB file; returns its URL."""
    folder = tmp_path_factory.mktemp("report_demo")
    url = f"duckdb:///{(folder / 'demo.duckdb').as_posix()}"
    engine = make_engine(url)
    try:
        load_demo(engine, generate_demo(customers=400, orders=4000, seed=11, end_date=AS_OF))
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="module")
def settings(demo_db: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Default settings on the demo database, reports in a temporary folder."""
    reports = tmp_path_factory.mktemp("reports")
    return load_settings(None, database_url=demo_db).model_copy(update={"reports_dir": reports})


@pytest.fixture(scope="module")
def run(settings: Settings) -> KpiRun:
    """The company and one team, as of the demo's end."""
    engine = make_engine(settings.database_url)
    try:
        return run_kpis(
            settings, engine, AS_OF, snapshot_period(AS_OF), teams=[TEAM], include_company=True
        )
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def hostile_run(run: KpiRun) -> KpiRun:
    """The run with hostile names on the first accounts to call and the first candidate."""
    report = run.reports[None]
    warnings = report.churn_warnings.sort_values(
        ["revenue_at_risk", "customer_id"], ascending=[False, True], kind="stable"
    ).reset_index(drop=True)
    names = [SCRIPT, FORMULA, "王\n小明", LONG_NAME, '<img src="http://127.0.0.1:9/x">']
    warnings["name"] = warnings["name"].astype("object")
    warnings.loc[: len(names) - 1, "name"] = names
    candidates = report.advocate_candidates.copy()
    if len(candidates):
        candidates["name"] = candidates["name"].astype("object")
        candidates.loc[0, "name"] = "</td><h1>x"
    changed = dataclasses.replace(report, churn_warnings=warnings, advocate_candidates=candidates)
    return dataclasses.replace(run, reports={**run.reports, None: changed})


@pytest.fixture(scope="module")
def zh_pdf(settings: Settings, hostile_run: KpiRun) -> Path:
    """The company-wide zh-CN report rendered once (with the hostile names)."""
    return write_diagnosis(settings, hostile_run, None, "zh-CN").pdf


# --- message catalogue and formatting ------------------------------------------------


def test_every_template_text_exists_in_both_languages() -> None:
    """The report templates' texts are in the report catalogue; the call sheet's in its
    own (crm_batch.i18n.callsheet_texts)."""
    used: dict[str, set[str]] = {"reports": set(), "callsheet": set()}
    for template in render.TEMPLATES_DIR.glob("*.html"):
        keys = set(re.findall(r't\["([\w.]+)"\]', template.read_text(encoding="utf-8")))
        used["callsheet" if template.name == "callsheet.html" else "reports"] |= keys
    assert all(used.values()), "the templates should use the message catalogues"
    for language in LANGUAGES:
        for name, texts in (
            ("reports", messages(language)),
            ("callsheet", CALLSHEET_TEXTS.all(language)),
        ):
            assert used[name] <= set(texts), used[name] - set(texts)
            assert all(texts[key].strip() for key in texts)
    assert message("text.top_calls", "en", count=15).endswith("top 15)")


def test_locale_formatting() -> None:
    assert fmt.money(12345.6, "zh-CN", "CNY") == "¥12,346"
    assert fmt.money(12345.6, "en", "CNY") == "CNY 12,346"
    assert fmt.money(-5.5, "en", "EUR") == "-EUR 5.50"
    assert fmt.percent(0.2534) == "25.3%"
    assert fmt.percent(math.nan) == fmt.DASH
    assert fmt.day(date(2026, 6, 30), "zh-CN") == "2026年6月30日"
    assert fmt.day(date(2026, 6, 30), "en") == "30 Jun 2026"
    assert fmt.day(pd.NaT, "en") == fmt.DASH


def test_display_text_makes_one_short_line() -> None:
    assert display_text("王\n小明") == "王 小明"
    assert display_text(None) == fmt.DASH
    assert display_text(pd.NA) == fmt.DASH
    cut = display_text(LONG_NAME)
    assert len(cut) == MAX_NAME_CHARS
    assert cut.endswith("…")


def test_scope_slug_is_file_system_safe() -> None:
    assert scope_slug(None) == "all"
    assert scope_slug("Shanghai") == "Shanghai"  # the workbook's stem (files.file_stem)
    assert scope_slug("华东 / 一部").startswith("华东-一部-")
    assert scope_slug("Team A/B") != scope_slug("Team A-B")
    assert "/" not in scope_slug("../../etc")
    assert ".." not in scope_slug("../../etc")
    assert scope_slug("All").startswith("all-team-")  # never the company's "all"
    assert scope_slug("???").startswith("team-")
    assert scope_slug("???") != scope_slug("!!!")


LONG_TEAM_NAMES = (
    "华" * 60,  # the longest Chinese name kept as it is (180 bytes)
    "华" * 80,  # 240 bytes: hashed, cut to 180
    "𠀀" * 70,  # four bytes a character
    "a" * 80,
    "华东/" * 40,
)


@pytest.mark.parametrize(
    "team", LONG_TEAM_NAMES, ids=["zh-60", "zh-80", "four-byte-70", "ascii-80", "zh-slashes"]
)
def test_every_file_a_long_team_name_gives_can_be_written(tmp_path: Path, team: str) -> None:
    """A name stays within the 255 bytes file systems take, temporary names included: 80
    Chinese characters once made a 270-byte report name the run could not write."""
    from crm_batch.excel.workbook_files import backup_path, beside_path, team_workbook_paths
    from crm_batch.files import atomic_write_text
    from crm_batch.periods import period_containing
    from crm_batch.reports import quarterly
    from crm_batch.reports.callsheets import sheet_paths

    settings = Settings.model_construct(reports_dir=tmp_path, workbooks_dir=tmp_path)
    quarter = period_containing(date(2026, 9, 30), "quarter")
    paths = [
        *diagnosis.output_paths(settings, team, "2026-12-05", "zh-CN"),
        *quarterly.output_paths(settings, team, quarter, "zh-CN"),
        *sheet_paths(settings, [(team, team)], "2026-12-05", {team: "zh-CN"})[(team, team)],
    ]
    workbook = team_workbook_paths(settings, [team, team.upper() + "x"])[team]
    stamp = datetime(2026, 12, 5, 23, 59, 59)
    paths += [workbook, beside_path(workbook, stamp), backup_path(tmp_path, workbook.stem, stamp)]
    for path in paths:
        atomic_write_text(path, "x")  # raises OSError (File name too long) past 255 bytes
        assert path.read_text() == "x"
        # the workbook refresh's temporary name is the longest made from a stem
        assert len(f".{path.stem}.0123abcd.tmp.xlsm".encode()) <= 255
    assert len(set(paths)) == len(paths)


def test_report_language_prefers_option_then_team_then_general(settings: Settings) -> None:
    team = settings.model_copy(
        update={"teams": (*settings.teams, type(settings.teams[0])(name="X", language="en"))}
    )
    assert report_language(team, "X", None) == "en"
    assert report_language(team, "X", "zh-CN") == "zh-CN"
    assert report_language(team, None, None) == settings.language


# --- findings ----------------------------------------------------------------------


def _customers(rows: list[tuple[str, float, int, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["tier", "revenue_12m", "recency_days", "value_group"])


def test_a_tier_quiet_revenue_finding_carries_its_number() -> None:
    customers = _customers(
        [
            ("A", 380_000, 120, "high_dormant"),
            ("A", 620_000, 10, "high_active"),
            ("B", 50_000, 200, "low_churned"),
        ]
    )
    channels = pd.DataFrame(columns=["channel", "touches", "roi"])
    found = findings.find({}, customers, channels, "en", "CNY")
    first = found[0]
    assert first.key == "a_tier_quiet_revenue"
    assert first.number == "38%"
    assert first.text.startswith("38% of A-tier 12-month revenue sits with customers")
    zh = findings.find({}, customers, channels, "zh-CN", "CNY")[0]
    assert "38%" in zh.text
    assert "A类" in zh.text


def test_findings_fire_on_thresholds_and_skip_missing_values() -> None:
    customers = _customers([("C", 100, 10, "low_active")])
    channels = pd.DataFrame(
        {
            "channel": ["email", "sms", "event"],
            "touches": [10, 10, 0],
            "revenue": [500.0, 3_000.0, 0.0],
            "cost": [1_000.0, 1_000.0, 2_000.0],
            "roi": [-0.5, 2.0, -1.0],
        }
    )
    kpis = {
        "revenue_12m": 1_000_000.0,
        "revenue_at_risk": 100_000.0,
        "churn_warnings_count": 12.0,
        "churn_warnings_high": 3.0,
        "pareto_revenue_share": 0.8,
        "repurchase_rate": math.nan,  # missing: no finding
        "complaint_resolved_24h_rate": 0.95,  # above the line: no finding
        "opt_out_rate": 0.05,
    }
    found = {f.key: f for f in findings.find(kpis, customers, channels, "en", "CNY")}
    assert set(found) == {
        "revenue_at_risk",
        "high_warnings",
        "pareto_concentration",
        "opt_out_high",
        "negative_roi_channel",
    }
    assert found["revenue_at_risk"].number == "CNY 100,000"
    assert "10% of 12-month revenue" in found["revenue_at_risk"].text
    assert found["negative_roi_channel"].text == (
        "Channel E-mail has a marketing ROI of -50%: it cost CNY 1,000 and brought in "
        "CNY 500 of attributed sales."
    )
    # no attributed sale yet: said so, not "it cost more than it brought in"
    channels.loc[2, "touches"] = 5
    unpaid = {f.key: f for f in findings.find(kpis, customers, channels, "en", "CNY")}
    assert unpaid["unpaid_channel"].number == "-100%"
    assert unpaid["unpaid_channel"].text == (
        "Channel Event has cost CNY 2,000 this period and no sale is attributed to it yet "
        "(ROI -100%)."
    )
    zh = {f.key: f for f in findings.find(kpis, customers, channels, "zh-CN", "CNY")}
    assert "尚无归因销售额" in zh["unpaid_channel"].text
    severities = [f.severity for f in findings.find(kpis, customers, channels, "en", "CNY")]
    assert severities == sorted(severities, key=["high", "medium", "info"].index)


# --- templates: autoescape, StrictUndefined, content ----------------------------------


def test_environment_escapes_and_is_strict() -> None:
    env = render.environment()
    assert env.from_string("{{ x }}").render(x=SCRIPT) == "&lt;script&gt;alert(1)&lt;/script&gt;"
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ missing }}").render()
    assert env.get_template("diagnosis.html").environment.autoescape is True


def test_missing_context_key_fails_the_render(run: KpiRun) -> None:
    context = diagnosis_context(
        run.reports[None],
        language="en",
        currency="CNY",
        company_name="Co",
        generated_at=datetime(2026, 7, 1, 6, 0),
    )
    del context["churn"]
    with pytest.raises(jinja2.UndefinedError):
        render.render_html("diagnosis.html", context)


@pytest.mark.parametrize("language", LANGUAGES)
def test_html_has_every_section_and_escapes_database_text(
    settings: Settings, hostile_run: KpiRun, language: str
) -> None:
    page = diagnosis_html(settings, hostile_run, None, language)
    texts = messages(language)
    assert page.startswith("<!DOCTYPE html>")
    assert f'<html lang="{language}">' in page
    for key in SECTION_KEYS:
        assert texts[key] in html_lib.unescape(page), key
    assert page.count('<a href="#') == len(SECTION_KEYS)  # table of contents
    assert page.count("data:image/png;base64,") == 3  # pareto, tiers, funnel
    # database text only as text
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "=cmd|&#39; /C calc&#39;!A0" in page
    assert '<img src="http' not in page
    assert "</td><h1>" not in page
    assert "王 小明" in page
    assert re.search(r"(Very Long Name ?)+…", page)
    body = page.split("</head>", 1)[1]
    assert len(max(re.findall(r">([^<]*)<", body), key=len)) < 2_000
    # the headline KPIs carry their definitions from the registry
    assert "12-month" in page or "近12个月" in page


# --- the URL fetcher --------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "http://example.com/",
        "https://example.com/x.css",
        "ftp://example.com/x",
        f"{render.TEMPLATES_DIR.as_uri()}/../pyproject.toml",
        "file://otherhost/share/x.css",
    ],
)
def test_fetcher_refuses_anything_but_templates_and_data(url: str) -> None:
    with pytest.raises(render.RefusedURL):
        render.LocalOnlyFetcher().fetch(url)


def test_fetcher_serves_templates_and_data_uris() -> None:
    fetcher = render.LocalOnlyFetcher()
    css = fetcher.fetch((render.TEMPLATES_DIR / "print.css").as_uri())
    assert b"@page" in css.read()
    css.close()
    data = fetcher.fetch("data:text/plain;base64,aGk=")
    assert data.read() == b"hi"
    data.close()


def test_foreign_resources_stop_the_render_and_reach_nothing(
    canary: tuple[str, list[str]],
) -> None:
    base, hits = canary
    for markup in (
        f'<img src="{base}/img">',
        f'<link rel="stylesheet" href="{base}/css">',
        '<link rel="attachment" href="file:///etc/passwd">',
        '<img src="file:///etc/passwd">',
    ):
        with pytest.raises(DataError, match="refused"):
            render.html_to_pdf(f"<p>x</p>{markup}")
    assert hits == []


def test_the_render_pauses_the_cycle_collector_and_restores_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Off while WeasyPrint renders, back as it was after, a failed render included."""
    seen: list[bool] = []

    class Document:
        def __init__(self, **_options: object) -> None:
            pass

        def write_pdf(self, **options: object) -> bytes:
            seen.append(gc.isenabled())
            assert options["pdf_variant"] == "pdf/ua-1"
            if fail:
                raise FatalURLFetchingError("refused")
            return b"%PDF-1.7"

    monkeypatch.setattr(render, "HTML", Document)
    fail = False
    assert gc.isenabled()
    assert render.html_to_pdf("<p>x</p>") == b"%PDF-1.7"
    assert seen == [False]
    assert gc.isenabled()
    fail = True
    with pytest.raises(DataError, match="refused"):
        render.html_to_pdf("<p>x</p>")
    assert gc.isenabled()
    gc.disable()  # a caller that keeps it off finds it off
    try:
        fail = False
        render.html_to_pdf("<p>x</p>")
        assert not gc.isenabled()
    finally:
        gc.enable()


# --- PDF ------------------------------------------------------------------------------


def _pdf_fonts(reader: PdfReader) -> set[str]:
    fonts = set()
    for page in reader.pages:
        resources = page.get("/Resources") or {}
        for font in (resources.get("/Font") or {}).values():
            fonts.add(str(font.get_object()["/BaseFont"]))
    return fonts


def test_zh_pdf_pages_metadata_and_cjk_font(zh_pdf: Path, run: KpiRun) -> None:
    reader = PdfReader(zh_pdf)
    assert 8 <= len(reader.pages) <= 30
    meta = reader.metadata
    assert meta.title.startswith("客户现状诊断报告 · 全公司")
    assert meta.author == "Demo Trading Co."
    assert meta.subject == message("diagnosis.subject", "zh-CN")
    names = [n for n in run.reports[None].customers["name"].dropna() if len(str(n)) >= 2]
    for field in (meta.title, meta.author, meta.subject):
        assert not any(str(name) in field for name in names)
        assert "<script" not in field
        assert "=cmd" not in field
    # Chinese drawn with the real CJK font, embedded (never tofu boxes)
    assert any("Noto-Sans-CJK-SC" in font for font in _pdf_fonts(reader))
    # issue 14: the cover and the contents share page 1, the findings start on page 2
    cover = reader.pages[0].extract_text()
    assert "目录" in cover
    assert re.search(r"公司\s*Demo Trading Co\.", cover)  # the company has its label
    assert re.search(r"生成时间\s*\d{4}年\d+月\d+日 \d\d:\d\d \(Asia/Shanghai, UTC\+08:00\)", cover)
    text = reader.pages[1].extract_text()
    assert "主要发现" in text
    assert f"2 / {len(reader.pages)}" in text  # footer page x / y
    # the standalone HTML sits beside the PDF and needs nothing else
    page = zh_pdf.with_suffix(".html").read_text(encoding="utf-8")
    assert "@page" in page
    assert 'rel="stylesheet"' not in page


def _structure(reader: PdfReader) -> list[tuple[str, dict]]:
    """Every element of the PDF's structure tree, in reading order: (type, dictionary)."""
    found: list[tuple[str, dict]] = []

    def walk(node: object) -> None:
        node = node.get_object() if hasattr(node, "get_object") else node
        if isinstance(node, list):
            for child in node:
                walk(child)
        elif isinstance(node, dict) and "/S" in node:
            found.append((str(node["/S"]), node))
            walk(node.get("/K", []))

    walk(reader.trailer["/Root"]["/StructTreeRoot"]["/K"])
    return found


def test_zh_pdf_is_tagged_pdf_ua_in_its_language(zh_pdf: Path) -> None:
    """PDF/UA-1: a structure tree, marked content, the document language and title, every
    chart a figure with its description, table headers as header cells."""
    reader = PdfReader(zh_pdf)
    root = reader.trailer["/Root"]
    assert bool(root["/MarkInfo"]["/Marked"])
    assert root["/Lang"] == "zh-CN"
    assert bool(root["/ViewerPreferences"]["/DisplayDocTitle"])
    assert "pdfuaid:part" in root["/Metadata"].get_object().get_data().decode("utf-8")
    elements = _structure(reader)
    kinds = Counter(kind for kind, _ in elements)
    assert kinds["/H1"] == 1
    assert kinds["/H2"] >= 10
    assert kinds["/Table"] >= 5
    assert kinds["/TD"] > kinds["/TH"] >= 20
    # each data cell names its header cells; the matrix's rows have headers too (scope)
    headers = [len(element["/A"]["/Headers"]) for kind, element in elements if kind == "/TD"]
    assert min(headers) >= 1
    assert headers.count(2) == 8  # the value x lifecycle matrix: 2 value rows x 4 stages
    figures = [element for kind, element in elements if kind == "/Figure"]
    assert len(figures) == 3  # the tiers, Pareto and campaign funnel charts
    for figure in figures:
        assert len(str(figure["/Alt"])) >= 20  # a description, not a file name


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils not installed")
def test_zh_page_renders_to_png(zh_pdf: Path, tmp_path: Path) -> None:
    """pdftoppm draws page 2 (findings) to a PNG, for people to look at too."""
    target = tmp_path / "page"
    subprocess.run(
        ["pdftoppm", "-f", "2", "-l", "2", "-r", "60", "-png", str(zh_pdf), str(target)],
        check=True,
        timeout=60,
    )
    png = next(tmp_path.glob("page*.png"))
    assert png.stat().st_size > 5_000


def test_failed_render_leaves_the_previous_files(
    settings: Settings, run: KpiRun, zh_pdf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pdf_path, html_path = output_paths(settings, None, AS_OF.isoformat(), "zh-CN")
    assert pdf_path == zh_pdf
    before_pdf, before_html = pdf_path.read_bytes(), html_path.read_bytes()

    def broken(_html: str, _templates_dir: object = None) -> bytes:
        raise RuntimeError("layout failed")

    monkeypatch.setattr(render, "html_to_pdf", broken)
    monkeypatch.setattr(render, "render_pool", lambda: InProcessPool())  # the patch applies
    with pytest.raises(RuntimeError, match="layout failed"):
        write_diagnosis(settings, run, None, "zh-CN")
    monkeypatch.setattr(diagnosis, "diagnosis_context", lambda *_a, **_k: {"lang": "en", "t": {}})
    with pytest.raises(jinja2.UndefinedError):
        write_diagnosis(settings, run, None, "zh-CN")
    assert pdf_path.read_bytes() == before_pdf
    assert html_path.read_bytes() == before_html
    assert not [p for p in pdf_path.parent.iterdir() if p.name.endswith(".tmp")]


def test_cli_renders_a_team_report_in_english(settings: Settings, tmp_path: Path) -> None:
    config = tmp_path / "crm_batch.toml"
    reports = tmp_path / "reports"
    config.write_text(f'[paths]\nreports_dir = "{reports.as_posix()}"\n', encoding="utf-8")
    result = CliRunner().invoke(
        main,
        [
            "report",
            "diagnosis",
            "--config",
            str(config),
            "--db",
            settings.database_url.render_as_string(hide_password=False),
            "--as-of",
            AS_OF.isoformat(),
            "--team",
            TEAM,
            "--lang",
            "en",
        ],
    )
    assert result.exit_code == 0, result.output
    pdf = reports / f"diagnosis_Shanghai_{AS_OF.isoformat()}_en.pdf"
    assert result.stdout.strip().splitlines()[-1] == str(pdf)
    assert pdf.with_suffix(".html").exists()
    reader = PdfReader(pdf)
    assert 6 <= len(reader.pages) <= 30
    assert reader.metadata.title == f"Customer status diagnosis · {TEAM} · 30 Jun 2026"
    text = "\n".join(page.extract_text() for page in reader.pages)
    for key in SECTION_KEYS:
        assert message(key, "en") in text, key
    assert f"2 / {len(reader.pages)}" in text


def test_a_scope_without_data_renders_with_dashes(run: KpiRun) -> None:
    report = run.reports[None]
    frames = ("funnel_by_campaign", "funnel_by_channel", "churn_warnings", "advocate_candidates")
    empty = dataclasses.replace(
        report,
        kpis=dict.fromkeys(report.kpis, math.nan),
        customers=report.customers.head(0),
        **{name: getattr(report, name).head(0) for name in frames},
    )
    context = diagnosis_context(
        empty, language="en", currency="CNY", company_name="Co", generated_at=datetime(2026, 7, 1)
    )
    page = render.render_html("diagnosis.html", context)
    assert messages("en")["text.no_warnings"] in page
    assert messages("en")["text.no_campaigns"] in page
    assert fmt.DASH in page


def test_the_pareto_curve_of_many_customers_stays_small() -> None:
    """A million-customer curve must not put a vertex per customer into the report."""
    from crm_batch.reports import charts

    few = charts.pareto_curve([float(n % 97 + 1) for n in range(500)], 0.2, "x", "y", "top")
    many = charts.pareto_curve([float(n % 97 + 1) for n in range(200_000)], 0.2, "x", "y", "top")
    assert len(many) < 2 * len(few)  # same number of vertices, whatever the customer count


# --- chart fonts ----------------------------------------------------------------------

#: Writes matplotlib's font list cache as a machine has it when matplotlib was imported
#: once before the CJK font was installed: every font but Noto CJK.
STALE_FONT_CACHE = """
import matplotlib, matplotlib.font_manager as fm
from pathlib import Path
every_font = fm.findSystemFonts
fm.findSystemFonts = lambda *a, **k: [f for f in every_font(*a, **k) if "CJK" not in f]
manager = fm.FontManager()
assert not [f for f in manager.ttflist if "CJK" in f.name]
cache = Path(matplotlib.get_cachedir(), f"fontlist-v{fm.FontManager.__version__}.json")
fm.json_dump(manager, cache)
"""


def test_a_stale_matplotlib_font_cache_still_draws_chinese(
    settings: Settings, tmp_path: Path
) -> None:
    """Issue 14: with a font cache that predates Noto CJK, the zh-CN report's charts
    showed boxes and the run printed a warning per glyph; the fonts are now handed to
    matplotlib explicitly, so nothing is missing and stderr holds no Python warning."""
    env = {**os.environ, "MPLCONFIGDIR": str(tmp_path / "mpl"), "PYTHONWARNINGS": "default"}
    subprocess.run(
        [sys.executable, "-c", STALE_FONT_CACHE], env=env, check=True, timeout=hang_bound(60)
    )
    reports = tmp_path / "reports"
    config = tmp_path / "crm_batch.toml"
    config.write_text(f'[paths]\nreports_dir = "{reports.as_posix()}"\n', encoding="utf-8")
    url = settings.database_url.render_as_string(hide_password=False)
    command = [sys.executable, "-m", "crm_batch", "report", "diagnosis", "--config", str(config)]
    command += ["--db", url, "--as-of", AS_OF.isoformat(), "--team", TEAM, "--lang", "zh-CN"]
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=hang_bound(120), check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "missing from" not in done.stderr, done.stderr[-3000:]
    assert "Warning" not in done.stderr, done.stderr[-3000:]
    assert (reports / f"diagnosis_{TEAM}_{AS_OF.isoformat()}_zh-CN.pdf").exists()


def test_campaign_rows_carry_id_and_start_and_roi_says_attributed(run: KpiRun) -> None:
    """Issue 14: campaigns of the same name were told apart by nothing, and "ROI" hid
    that it is last-touch attributed."""
    report = run.reports[None]
    context = diagnosis_context(
        report, language="en", currency="CNY", company_name="Co", generated_at=datetime(2026, 7, 1)
    )
    rows = context["campaigns"]["campaigns"]
    funnel = report.funnel_by_campaign
    assert rows, "the demo has campaigns"
    assert [row["campaign_id"] for row in rows] == [str(i) for i in funnel["campaign_id"]]
    assert [row["started"] for row in rows] == [fmt.day(d, "en") for d in funnel["started_at"]]
    assert all(row["started"] != fmt.DASH for row in rows)
    page = render.render_html("diagnosis.html", context)
    assert "Attributed ROI" in page
    assert "last-touch attribution" in page


def test_a_missing_glyph_is_one_counted_log_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from crm_batch.reports import chart_fonts, charts

    monkeypatch.setattr(chart_fonts, "missing_glyphs", Counter())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a Python warning escaping the chart fails here
        for _ in range(3):
            charts.funnel(["\ue000\ue001 负责人", "风险等级"], [3.0, 1.0], "客户")
    lines = [r for r in caplog.records if "missing from the chart fonts" in r.getMessage()]
    assert len(lines) == 1
    assert "of 2 character(s)" in lines[0].getMessage()  # one line, with the count
    assert set(chart_fonts.missing_glyphs) == {"\ue000", "\ue001"}
    assert chart_fonts.missing_glyphs["\ue000"] >= 3  # every chart drawn counts


def test_the_cjk_font_files_are_found_and_registered() -> None:
    from matplotlib import font_manager

    from crm_batch.reports import chart_fonts

    files = chart_fonts.register_fonts()
    assert files, "Noto Sans CJK SC not installed (fonts-noto-cjk)"
    names = {entry.name for entry in font_manager.fontManager.ttflist}
    assert chart_fonts.CJK_FAMILY in names


@pytest.fixture(autouse=True)
def _no_missing_glyph() -> Iterator[None]:
    """Every test here fails when a chart it drew had a glyph no chart font carries."""
    from crm_batch.reports import chart_fonts

    before = sum(chart_fonts.missing_glyphs.values())
    yield
    assert sum(chart_fonts.missing_glyphs.values()) == before, chart_fonts.missing_glyphs


def test_zh_table_headings_never_wrap_inside_a_word(zh_pdf: Path) -> None:
    """Issue 14: "负责/人", "风险等/级" in the call list. Every Chinese column heading of
    the report is printed whole on one line."""
    text = "\n".join(page.extract_text() for page in PdfReader(zh_pdf).pages)
    texts = messages("zh-CN")
    for key in ("col.customer", "col.owner", "col.why", "col.last_order"):
        assert texts[key] in text, key
    for key in ("col.revenue_at_risk", "col.action", "col.value_tier", "col.orders_12m"):
        assert texts[key] in text, key
