"""Per-owner call sheets (每日跟进清单): a short PDF for each sales rep of a team.

With ``reports.per_owner`` on, the nightly run renders, for every account owner of a
team's customers, one sheet filtered from the team's data of the business date T:

* **follow-ups due** (first: promises made): the owner's customers whose latest
  follow-up set a next contact date up to T + :data:`DUE_WITHIN_DAYS`; dates up to T
  are overdue (the nightly run makes the sheet once T's day is over) and come first,
  earliest first;
* **customers to call**: the owner's churn warnings in the team diagnosis' calling order
  (:func:`crm_batch.kpi.churn.rank_for_calls`: expected 12-month value first), the first
  :data:`CALLS_PER_SHEET` of them, each with id, name, phone, tier, why (level and
  signals), expected value, the last follow-up (outcome, date) and the next contact date;
* **care calendar**: the owner's birthdays and first-order anniversaries of the
  coming days (:func:`crm_batch.kpi.care.care_calendar`, as the workbook's Care sheet),
  by greeting date, those to greet now marked.

An owner with nothing in any list still gets a sheet, saying so in one line: a missing
file would read as a failed run, and a re-run of the same date would leave the earlier
sheet in place. Customers without an owner get no sheet (nobody to hand it to); the team
workbook and the diagnosis list them. Sheets are written to ``paths.reports_dir`` as
``callsheet_<team>_<owner>_<date>_<lang>.pdf`` and ``.html`` (:func:`sheet_paths`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from crm_batch.config import Settings
from crm_batch.files import cut_to_bytes, file_stem, report_scope
from crm_batch.i18n import numbers as fmt
from crm_batch.i18n.callsheet_texts import CALLSHEET_TEXTS, callsheet_text
from crm_batch.i18n.messages import message
from crm_batch.kpi.engine import PeriodReport
from crm_batch.kpi.playbook import OUTCOME_LABELS, label, outcome_label
from crm_batch.reports.diagnosis import scope_slug
from crm_batch.reports.display import display_text
from crm_batch.reports.render import ReportJob, render_html, write_reports

REPORT = "callsheet"
TEMPLATE = "callsheet.html"
#: Customers to call listed on a sheet: about a day's calls, so the sheet stays short; the
#: rest are on the team workbook's Watchlist, and the sheet says how many.
CALLS_PER_SHEET = 20
#: Follow-ups due: next contact dates up to this many days after the business date.
DUE_WITHIN_DAYS = 7
#: Longest owner or team part of a sheet's file name, in UTF-8 bytes: two names of 80
#: Chinese characters would pass the 255-byte file-name limit of most file systems.
_PART_BYTES = 60

Unit = tuple[str, str]  # (team, owner)


@dataclass(frozen=True)
class OwnerSheet:
    """One rendered call sheet: whose, in which language, and where it went."""

    team: str
    owner: str
    language: str
    pdf: Path
    html: Path


def sheet_owners(report: PeriodReport) -> list[str]:
    """The account owners of ``report``'s customers (exact text, blank owners left out),
    sorted."""
    owners = report.customers["owner"].dropna().astype(str)
    return sorted(owner for owner in owners.unique() if owner.strip())


def sheet_units(reports: Mapping[str | None, PeriodReport]) -> list[Unit]:
    """Every (team, owner) of the teams' reports (the company's report is no team's)."""
    return [
        (team, owner)
        for team, report in reports.items()
        if team is not None
        for owner in sheet_owners(report)
    ]


def _short(stem: str, key: str) -> str:
    """``stem`` when its UTF-8 form fits :data:`_PART_BYTES`, else its start and a short
    hash of ``key`` (the exact name), so a long name still gives a file name of its own."""
    if len(stem.encode("utf-8")) <= _PART_BYTES:
        return stem
    return f"{cut_to_bytes(stem, _PART_BYTES - 9).rstrip('-_. ')}-{_digest(key)}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def _stem(team: str, owner: str) -> str:
    team_part = _short(scope_slug(team), team)
    return f"{REPORT}_{team_part}_{_short(file_stem(owner), owner)}"


def sheet_paths(
    settings: Settings, units: Sequence[Unit], period: str, language_of: Mapping[str, str]
) -> dict[Unit, tuple[Path, Path]]:
    """The PDF and HTML path of each (team, owner) sheet in ``paths.reports_dir``.

    The team and owner parts are :func:`crm_batch.files.file_stem` of each name (the team
    part as the team's diagnosis names it: "all" hashed), shortened when long. Sheets
    whose names differ only in letter case (one file on Windows and macOS) all take a
    hash of the exact team and owner, as team workbooks do; ``language_of``: each
    team's language.
    """
    stems = {(team, owner): _stem(team, owner) for team, owner in units}
    folded: dict[str, int] = {}
    for stem in stems.values():
        folded[stem.casefold()] = folded.get(stem.casefold(), 0) + 1
    paths = {}
    for (team, owner), stem in stems.items():
        if folded[stem.casefold()] > 1:
            stem = f"{stem}-{_digest(team + chr(0) + owner)}"
        name = f"{stem}_{period}_{language_of[team]}"
        paths[(team, owner)] = (
            settings.reports_dir / f"{name}.pdf",
            settings.reports_dir / f"{name}.html",
        )
    return paths


def _owned(frame: pd.DataFrame, owner: str) -> pd.DataFrame:
    return frame[frame["owner"].astype("object").map(str, na_action="ignore") == owner]


def _latest(followups: pd.DataFrame | None, ids: pd.Series) -> dict[str, dict[str, Any]]:
    """customer id (text) -> its latest stored follow-up, for the customers ``ids``."""
    if followups is None or followups.empty:
        return {}
    chosen = followups[followups["customer_id"].astype(str).isin(set(ids.astype(str)))]
    return {str(record["customer_id"]): record for record in chosen.to_dict(orient="records")}


def _outcome(contact: Mapping[str, Any] | None, language: str) -> str:
    """A saved follow-up's outcome label (a stored key the list no longer has: as is)."""
    if contact is None or not isinstance(contact.get("outcome"), str):
        return fmt.DASH
    key = contact["outcome"]
    return outcome_label(key, language) if key in OUTCOME_LABELS else display_text(key, 40)


def _last_followup(contact: Mapping[str, Any] | None, language: str) -> tuple[str, str]:
    """(outcome, date saved) of the latest follow-up, shown as ``<outcome> · <date>``
    with the date on one line; (dash, "") without one."""
    if contact is None:
        return fmt.DASH, ""
    return _outcome(contact, language), fmt.day(contact.get("entered_at"), language)


def _contact_date(value: object) -> date | None:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else None


def _why(row: Any, language: str) -> str:
    """The warning level and its signals: ``高 · 3个月未下单``."""
    if row.signal_quiet and row.signal_complaint:
        signal = message("signal.both", language)
    elif row.signal_complaint:
        signal = message("signal.complaint", language)
    else:
        signal = message("signal.no_order_3m", language)
    return f"{label(str(row.level), language)} · {signal}"


def _calls(
    report: PeriodReport,
    owner: str,
    phones: pd.Series,
    latest: Mapping[str, Mapping[str, Any]],
    language: str,
    currency: str,
) -> tuple[list[dict[str, str]], int]:
    """The owner's warnings in calling order (the report's order), the first
    :data:`CALLS_PER_SHEET` as rows, and how many there are in all."""
    mine = _owned(report.churn_warnings, owner)
    rows = []
    for rank, row in enumerate(mine.head(CALLS_PER_SHEET).itertuples(index=False), start=1):
        customer_id = str(row.customer_id)
        contact = latest.get(customer_id)
        rows.append(
            {
                "rank": str(rank),
                "customer_id": display_text(customer_id, 40),
                "customer": display_text(row.name),
                "phone": display_text(phones.get(customer_id), 40),
                "tier": display_text(row.tier, 10),
                "why": _why(row, language),
                "level_key": str(row.level),
                "expected_12m": fmt.money(
                    getattr(row, "expected_revenue_12m", math.nan), language, currency
                ),
                "last_followup": _last_followup(contact, language),
                "next_contact": fmt.DASH
                if contact is None
                else fmt.day(_contact_date(contact.get("next_contact_date")), language),
            }
        )
    return rows, len(mine)


def _is_true(value: object) -> bool:
    """A nullable boolean cell: True only when it holds true (NA: unknown, not true)."""
    return not pd.isna(value) and bool(value)


def _event(row: Any, language: str) -> str:
    years = int(row.years)
    if row.event == "anniversary":
        return callsheet_text("event.anniversary", language, years=years)
    if 0 < years < 130:  # an age; a birthday with an unknown or odd year shows no age
        return callsheet_text("event.birthday_years", language, years=years)
    return callsheet_text("event.birthday", language)


def _care(
    report: PeriodReport, owner: str, phones: pd.Series, language: str
) -> list[dict[str, Any]]:
    """The owner's care events, by greeting date (the calendar's order)."""
    rows = []
    for row in _owned(report.care_calendar, owner).itertuples(index=False):
        customer_id = str(row.customer_id)
        rows.append(
            {
                "due_date": fmt.day(row.due_date, language),
                "greet_now": bool(row.is_due),
                "event": _event(row, language),
                "event_date": fmt.day(row.event_date, language),
                "customer_id": display_text(customer_id, 40),
                "customer": display_text(row.name),
                "phone": display_text(phones.get(customer_id), 40),
                "no_offers": _is_true(row.marketing_opt_out),
            }
        )
    return rows


def _due(
    report: PeriodReport,
    owner: str,
    phones: pd.Series,
    latest: Mapping[str, Mapping[str, Any]],
    language: str,
) -> list[dict[str, Any]]:
    """The owner's customers whose next contact date is at most
    :data:`DUE_WITHIN_DAYS` days after the business date: earliest (most overdue) first,
    then by customer id."""
    until = report.as_of + timedelta(days=DUE_WITHIN_DAYS)
    names = _owned(report.customers, owner)
    name_of = dict(zip(names["customer_id"].astype(str), names["name"], strict=True))
    found = []
    for customer_id, name in name_of.items():
        contact = latest.get(customer_id)
        when = _contact_date(contact.get("next_contact_date")) if contact else None
        if when is not None and when <= until:
            found.append((when, customer_id, name, contact))
    found.sort(key=lambda item: (item[0], item[1]))
    return [
        {
            "contact_date": fmt.day(when, language),
            "overdue": when <= report.as_of,
            "customer_id": display_text(customer_id, 40),
            "customer": display_text(name),
            "phone": display_text(phones.get(customer_id), 40),
            "last_followup": _last_followup(contact, language),
            "note": display_text(contact.get("note"), 80)
            if isinstance(contact.get("note"), str)
            else fmt.DASH,
        }
        for when, customer_id, name, contact in found
    ]


def sheet_context(
    report: PeriodReport,
    owner: str,
    followups: pd.DataFrame | None,
    *,
    language: str,
    currency: str,
    company_name: str,
    generated_at: datetime,
    care_lookahead_days: int = 7,
    care_lead_days: int = 2,
) -> dict[str, Any]:
    """Everything ``callsheet.html`` shows for ``owner`` of ``report``'s team, as plain
    data (see the module). ``followups``: the latest stored follow-up per customer
    (:func:`crm_batch.app.followups.latest_followups`; None or empty: none stored);
    the care settings only word the care section's note."""
    customers = report.customers
    phones = pd.Series(
        customers["phone"].to_numpy(dtype=object), index=customers["customer_id"].astype(str)
    )
    phones = phones[~phones.index.duplicated()]
    latest = _latest(followups, _owned(customers, owner)["customer_id"])
    calls, calls_total = _calls(report, owner, phones, latest, language, currency)
    care = _care(report, owner, phones, language)
    due = _due(report, owner, phones, latest, language)
    overdue = sum(1 for row in due if row["overdue"])
    greetings = sum(1 for row in care if row["greet_now"])
    t = CALLSHEET_TEXTS.all(language)
    return {
        "lang": language,
        "t": t,
        "report": {
            "title": t["title"],
            "subject": t["subject"],
            "owner": display_text(owner),
            "team": display_text(report.team),
            "company": display_text(company_name, 200),
            "as_of": fmt.day(report.as_of, language),
            "generated": fmt.moment(generated_at, language),
        },
        "summary": callsheet_text(
            "summary",
            language,
            calls=calls_total,
            care=len(care),
            greetings=greetings,
            due=len(due),
            overdue=overdue,
        ),
        "nothing": not (calls or care or due),
        "calls": calls,
        "calls_more": callsheet_text("more_calls", language, count=calls_total - CALLS_PER_SHEET)
        if calls_total > CALLS_PER_SHEET
        else "",
        "care": care,
        "care_title": callsheet_text("section.care", language, days=care_lookahead_days),
        "care_note": callsheet_text("section.care_note", language, lead=care_lead_days),
        "due": due,
        "due_title": callsheet_text(
            "section.due",
            language,
            until=fmt.day(report.as_of + timedelta(days=DUE_WITHIN_DAYS), language),
        ),
    }


def sheet_html(
    settings: Settings,
    report: PeriodReport,
    owner: str,
    followups: pd.DataFrame | None,
    language: str,
) -> str:
    """The call sheet of ``owner`` in ``report``'s team as standalone HTML (its scope,
    the team, recorded for the PDF)."""
    context = sheet_context(
        report,
        owner,
        followups,
        language=language,
        currency=settings.currency,
        company_name=settings.company_name,
        generated_at=datetime.now(settings.tz),
        care_lookahead_days=settings.thresholds.care_lookahead_days,
        care_lead_days=settings.thresholds.care_lead_days,
    )
    return render_html(TEMPLATE, {**context, "scope_record": report_scope(report.team)})


def write_call_sheets(
    settings: Settings,
    reports: Mapping[str | None, PeriodReport],
    units: Sequence[Unit],
    followups: pd.DataFrame | None,
    paths: Mapping[Unit, tuple[Path, Path]],
    language_of: Mapping[str, str],
) -> list[OwnerSheet]:
    """Render the call sheets of ``units`` ((team, owner) pairs of ``reports``) to
    ``paths`` (:func:`sheet_paths`) in each team's language, side by side in the render
    workers; each sheet is written atomically when its PDF is ready (the first failure
    stops the batch: :func:`crm_batch.jobs.scopes.render_each_owner` isolates it)."""
    rendered: list[OwnerSheet] = []

    def jobs() -> Iterator[ReportJob]:
        for team, owner in units:
            language = language_of[team]
            pdf_path, html_path = paths[(team, owner)]
            page = sheet_html(settings, reports[team], owner, followups, language)
            rendered.append(OwnerSheet(team, owner, language, pdf_path, html_path))
            yield ReportJob(page, pdf_path, html_path)

    write_reports(jobs(), timeout_seconds=settings.reports.render_timeout_seconds)
    return rendered
