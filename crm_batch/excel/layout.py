"""The team workbook's layout: sheets, tables, defined names, columns and their labels.

This module is the contract between the workbook writer (:mod:`crm_batch.excel.workbook`),
the harvest of staff inputs (:mod:`crm_batch.excel.harvest`, rows as
:class:`crm_batch.app.followups.StaffInput`) and the xlwings button
handlers (:mod:`crm_batch.buttons`). Code finds data in a workbook by the stable
names defined here (table names, defined names, column keys), never by tab title, cell
position or file name: staff rename tabs, sort and filter tables, and the language of the
labels is a setting.

Every label exists in both languages, ``zh-CN`` and ``en`` (a test checks it).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Literal

from crm_batch.errors import ConfigError
from crm_batch.i18n import LANGUAGES
from crm_batch.i18n.characters import TRUNCATION_MARKERS
from crm_batch.kpi.playbook import OUTCOME_LABELS, outcome_label

#: Bumped when a table's columns or a defined name change incompatibly; stored in the
#: workbook as :data:`NAME_LAYOUT` so a reader can tell which layout it is looking at.
LAYOUT_VERSION = 1


#: Sheet keys (stable, English), in tab order. "orphaned" exists only when there are
#: orphaned notes.
SHEETS: tuple[str, ...] = (
    "dashboard",
    "customers",
    "watchlist",
    "care",
    "advocates",
    "followups",
    "orphaned",
)

_SHEET_TITLES: dict[str, tuple[str, str]] = {
    "dashboard": ("仪表板", "Dashboard"),
    "customers": ("客户", "Customers"),
    "watchlist": ("流失预警", "Watchlist"),
    "care": ("客户关怀", "Care"),
    "advocates": ("推荐大使", "Advocates"),
    "followups": ("跟进记录", "Follow-ups"),
    "orphaned": ("孤立备注", "Orphaned notes"),
}

#: VBA code names of the sheets (document modules of the VBA project); stable, ASCII.
SHEET_CODE_NAMES: dict[str, str] = {
    "dashboard": "shDashboard",
    "customers": "shCustomers",
    "watchlist": "shWatchlist",
    "care": "shCare",
    "advocates": "shAdvocates",
    "followups": "shFollowUps",
    "orphaned": "shOrphaned",
}

#: Excel table (ListObject) names: stable in every language.
TABLE_NAMES: dict[str, str] = {
    "customers": "Customers",
    "watchlist": "Watchlist",
    "care": "Care",
    "advocates": "Advocates",
    "followups": "FollowUps",
    "orphaned": "OrphanedNotes",
}

# Workbook-scope defined names (text constants).
NAME_TEAM = "crm_team"
NAME_LANGUAGE = "crm_language"
NAME_AS_OF = "crm_as_of"
NAME_LAYOUT = "crm_layout_version"
DEFINED_NAMES: tuple[str, ...] = (NAME_TEAM, NAME_LANGUAGE, NAME_AS_OF, NAME_LAYOUT)

#: The VBA macros behind the Dashboard buttons (workbooks/vba/Buttons.bas), in order.
BUTTON_MACROS: tuple[str, ...] = ("RefreshData", "SaveFollowups", "MakeMyPdf")

ColumnKind = Literal["text", "int", "money", "date", "datetime", "percent", "score", "decimal"]


@dataclass(frozen=True)
class Column:
    """One table column: stable key, labels, value kind, width hint, staff input or not."""

    key: str
    labels: Mapping[str, str]
    kind: ColumnKind = "text"
    width: float = 12.0
    input: bool = False

    def label(self, language: str) -> str:
        """The header in ``language``."""
        return self.labels[check_language(language)]


def _col(
    key: str, zh: str, en: str, kind: ColumnKind = "text", width: float = 12.0, **kw: bool
) -> Column:
    return Column(key, {"zh-CN": zh, "en": en}, kind, width, **kw)


_ID = _col("customer_id", "客户编号", "Customer ID", "text", 12)
_NAME = _col("customer_name", "客户名称", "Customer", "text", 22)
_OWNER = _col("owner", "负责人", "Owner", "text", 12)
_TIER = _col("tier", "分层", "Tier", "text", 14)
_VALUE_TIER = _col("value_tier", "价值等级", "Value tier", "text", 11)
_LIFECYCLE = _col("lifecycle", "生命周期", "Lifecycle", "text", 11)
_LAST_ORDER = _col("last_order_date", "最近下单", "Last order", "date", 12)
_ORDERS_12M = _col("orders_12m", "近12个月订单", "Orders, 12 months", "int", 10)
_REVENUE_12M = _col("revenue_12m", "近12个月销售额", "Revenue, 12 months", "money", 15)
_LEVEL = _col("churn_warning_level", "流失预警", "Churn warning", "text", 10)
_AT_RISK = _col("revenue_at_risk", "风险销售额", "Revenue at risk", "money", 15)
_ACTION = _col("next_action", "下一步行动", "Next best action", "text", 40)
#: Predicted value (crm_batch.kpi.predict): blank for customers without a paid order.
_PREDICTED = (
    _col("p_alive", "仍活跃概率", "P(alive)", "percent", 9),
    _col(
        "expected_orders_12m",
        "预测未来12个月订单",
        "Expected orders, next 12 months",
        "decimal",
        10,
    ),
    _col(
        "expected_revenue_12m",
        "预测未来12个月销售额",
        "Expected revenue, next 12 months",
        "money",
        15,
    ),
)

_COLUMNS: dict[str, tuple[Column, ...]] = {
    "dashboard": (),
    "customers": (
        _ID,
        _NAME,
        _OWNER,
        _col("region", "区域", "Region", "text", 10),
        _TIER,
        _VALUE_TIER,
        _LIFECYCLE,
        _col("r_score", "R分", "R score", "score", 7),
        _col("f_score", "F分", "F score", "score", 7),
        _col("m_score", "M分", "M score", "score", 7),
        _col("rfm_segment", "RFM分群", "RFM segment", "text", 14),
        _LAST_ORDER,
        _col("recency_days", "距今天数", "Days since order", "int", 9),
        _ORDERS_12M,
        _REVENUE_12M,
        *_PREDICTED,
        _LEVEL,
        _AT_RISK,
        _ACTION,
    ),
    "watchlist": (
        _ID,
        _NAME,
        _OWNER,
        _col("level", "风险等级", "Level", "text", 9),
        _col("signals", "预警信号", "Signals", "text", 22),
        _AT_RISK,
        _TIER,
        _VALUE_TIER,
        _LAST_ORDER,
        _col("recency_days", "距今天数", "Days since order", "int", 9),
        _REVENUE_12M,
        *_PREDICTED,
        _col("complaint_hours_open", "投诉未解决小时数", "Complaint open (h)", "int", 10),
        _ACTION,
    ),
    "care": (
        _ID,
        _NAME,
        _OWNER,
        _col("event", "事件", "Event", "text", 12),
        _col("event_date", "日期", "Date", "date", 12),
        _col("due_date", "问候日", "Greet on", "date", 12),
        _col("is_due", "今日应问候", "Due now", "text", 9),
        _col("years", "年数", "Years", "int", 7),
        _col("marketing_opt_out", "拒收营销", "Opted out of marketing", "text", 10),
    ),
    "advocates": (
        _ID,
        _NAME,
        _OWNER,
        _col("status", "状态", "Status", "text", 18),
        _col("referrals_successful", "成功转介绍", "Successful referrals", "int", 10),
        _ORDERS_12M,
        _REVENUE_12M,
        _VALUE_TIER,
    ),
    "followups": (
        _ID,
        _NAME,
        _OWNER,
        _col("next_action", "下一步行动", "Next best action", "text", 32),
        _col("last_outcome", "上次结果", "Last outcome", "text", 12),
        _col("last_contact_at", "上次联系", "Last contact", "datetime", 16),
        _col("outcome", "跟进结果", "Outcome", "text", 14, input=True),
        _col("note", "备注", "Note", "text", 40, input=True),
        _col("next_contact_date", "下次联系日期", "Next contact", "date", 13, input=True),
        _col("entered_by", "填写人", "Entered by", "text", 12, input=True),
        _col("saved_at", "已保存于", "Saved at", "datetime", 16),
        _col("save_problem", "保存问题", "Save problem", "text", 30),
    ),
    "orphaned": (
        _ID,
        _NAME,
        _col("current_team", "现所属团队", "Current team", "text", 14),
        _col("outcome", "跟进结果", "Outcome", "text", 14),
        _col("note", "备注", "Note", "text", 40),
        _col("next_contact_date", "下次联系日期", "Next contact", "date", 13),
        _col("entered_by", "填写人", "Entered by", "text", 12),
    ),
}

#: The staff input columns of the Follow-ups table, in order.
INPUT_COLUMNS: tuple[str, ...] = tuple(c.key for c in _COLUMNS["followups"] if c.input)
#: The status columns of the Follow-ups table (written by harvest / the Save button).
STATUS_COLUMNS: tuple[str, ...] = ("saved_at", "save_problem")

#: Longest ``entered_by`` accepted (data validation in the workbook, checked on save).
ENTERED_BY_MAX_LENGTH = 60
#: Longest note accepted from staff (Excel's own cell limit).
NOTE_MAX_LENGTH = 32_767

OUTCOMES: tuple[str, ...] = tuple(OUTCOME_LABELS)

#: KPI tiles of the Dashboard (registry names), in reading order.
DASHBOARD_KPIS: tuple[str, ...] = (
    "customers_total",
    "buyers_12m",
    "revenue_12m",
    "aov_12m",
    "active_count",
    "repurchase_rate",
    "new_customers",
    "churn_warnings_count",
    "churn_warnings_high",
    "revenue_at_risk",
    "winback_customers",
    "advocates",
)

#: The workbook's own fixed texts (titles, captions, values shown in cells).
_TEXTS: dict[str, tuple[str, str]] = {
    "dashboard.title": ("团队客户工作簿", "Team customer workbook"),
    "dashboard.team": ("团队", "Team"),
    "dashboard.as_of": ("数据截至", "Data as of"),
    "dashboard.period": ("统计期间", "Period"),
    "dashboard.previous": ("上期", "Previous period"),
    "dashboard.change": ("变化", "Change"),
    "dashboard.kpis": ("核心指标", "Key figures"),
    "dashboard.trend": ("近12个月趋势", "Last 12 months"),
    "dashboard.month": ("月份", "Month"),
    "dashboard.trend_revenue": ("近12个月净销售额(滚动)", "Net revenue, last 12 months"),
    "dashboard.trend_active": ("活跃客户数", "Active customers"),
    "dashboard.buttons": ("操作", "Actions"),
    "dashboard.hint": (
        "在“跟进记录”表的浅黄色列中填写跟进结果,然后点击“保存跟进记录”。",
        "Type follow-up outcomes in the light-yellow columns of the Follow-ups table, "
        "then click Save follow-ups.",
    ),
    "dashboard.generated": ("生成时间", "Generated"),
    "dashboard.no_previous": ("无上期数据", "no previous period"),
    "dashboard.tiles_legend": (
        "每个指标下方:左为较上期同日的变化(绿色为向好),右侧灰色数字为上期同日的数值。",
        "Under each figure: left, its change on the previous period to the same day (green: "
        "the good way); right, in grey, the previous period's value on that day.",
    ),
    "button.RefreshData": ("刷新数据", "Refresh data"),
    "button.SaveFollowups": ("保存跟进记录", "Save follow-ups"),
    "button.MakeMyPdf": ("生成我的PDF", "Make my PDF"),
    "orphaned.hint": (
        "这些备注所属的客户已不在本团队(或已删除);备注已保存在数据库中,仅供参考。",
        "These notes belong to customers who left this team (or no longer exist); they are "
        "kept in the database and shown here for reference.",
    ),
    "care.birthday": ("生日", "Birthday"),
    "care.anniversary": ("首单纪念日", "First-order anniversary"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "advocate.candidate": ("候选人:邀请加入", "Candidate: invite"),
    "advocate.advocate": ("推荐达人", "Advocate"),
    "signal.no_order_3m": ("3个月未下单", "no order for 3 months"),
    "signal.complaint_open": ("投诉超24小时未解决", "complaint open > 24 h"),
    "validation.outcome.title": ("跟进结果", "Outcome"),
    "validation.outcome.message": ("请从列表中选择。", "Choose a value from the list."),
    "validation.date.title": ("下次联系日期", "Next contact"),
    "validation.date.message": (
        "请输入日期(不早于数据日期前30天)。",
        "Type a date (not more than 30 days before the data date).",
    ),
    "validation.entered_by.title": ("填写人", "Entered by"),
    "validation.entered_by.message": (
        "请填写您的姓名(最多60个字符)。",
        "Type your name (at most 60 characters).",
    ),
    "truncated": (TRUNCATION_MARKERS["zh-CN"], TRUNCATION_MARKERS["en"]),
}


@dataclass(frozen=True)
class OrphanedNote:
    """A staff note whose customer is no longer in the workbook's team.

    ``current_team`` is the customer's team now, or None if the customer is gone;
    ``sheet_row`` is the row it came from in the previous workbook (0 when it came from
    the database).
    """

    customer_id: str
    customer_name: str | None
    current_team: str | None
    outcome: str | None
    note: str | None
    next_contact_date: date | None
    entered_by: str | None
    sheet_row: int = 0


def check_language(language: str) -> str:
    """``language`` itself when supported, else a :class:`ConfigError`."""
    if language not in LANGUAGES:
        raise ConfigError(
            f"workbook language {language!r} is not supported: use one of {', '.join(LANGUAGES)}"
        )
    return language


def _pick(pair: tuple[str, str], language: str) -> str:
    return pair[LANGUAGES.index(check_language(language))]


def sheet_title(key: str, language: str) -> str:
    """The tab title of sheet ``key`` in ``language`` (KeyError for an unknown key)."""
    return _pick(_SHEET_TITLES[key], language)


def text(key: str, language: str) -> str:
    """One of the workbook's fixed texts in ``language`` (KeyError for an unknown key)."""
    return _pick(_TEXTS[key], language)


def texts() -> dict[str, tuple[str, str]]:
    """Every fixed text as ``key -> (zh-CN, en)`` (for tests and the docs)."""
    return dict(_TEXTS)


def columns(sheet_key: str) -> tuple[Column, ...]:
    """The columns of sheet ``sheet_key``'s table, in order (empty for the dashboard)."""
    return _COLUMNS[sheet_key]


def _normal(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip().casefold()


_HEADERS: dict[str, dict[str, str]] = {
    sheet: {
        _normal(name): column.key
        for column in cols
        for name in (column.key, *column.labels.values())
    }
    for sheet, cols in _COLUMNS.items()
}


def header_key(sheet_key: str, header_text: str) -> str | None:
    """The column key of a header in either language (or the key itself); None if unknown.

    Comparison ignores surrounding blanks, letter case and full-width/half-width forms.
    """
    if not isinstance(header_text, str):
        return None
    return _HEADERS[sheet_key].get(_normal(header_text))


def outcome_labels(language: str) -> list[str]:
    """Every outcome's label in ``language``, in drop-down order."""
    return [outcome_label(key, language) for key in OUTCOMES]


_OUTCOME_KEYS: dict[str, str] = {
    _normal(name): key for key, pair in OUTCOME_LABELS.items() for name in (key, *pair)
}


def outcome_key(value: object) -> str | None:
    """The outcome key of a label in either language or of the key itself; None if not one."""
    if not isinstance(value, str):
        return None
    return _OUTCOME_KEYS.get(_normal(value))
