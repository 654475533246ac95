"""The words of a sales rep's call sheet (zh-CN, English): its title, headings, columns
and the lines that say a list is empty.

Segment, level and outcome names come from the playbook (:mod:`crm_batch.kpi.playbook`),
the warning signals from the report catalogue (:mod:`crm_batch.i18n.messages`); this
catalogue holds only what the call sheet says on its own.
"""

from __future__ import annotations

from crm_batch.i18n.catalog import Catalog

CALLSHEET_TEXTS = Catalog(
    {
        "title": ("每日跟进清单", "Call sheet"),
        "subject": (
            "负责人自己的待联系客户、关怀日历和到期跟进",
            "An account owner's customers to call, care calendar and follow-ups due",
        ),
        "owner": ("负责人", "Owner"),
        "team": ("团队", "Team"),
        "as_of": ("数据截至", "Data as of"),
        "generated": ("生成时间", "Generated"),
        "summary": (
            "待联系 {calls} 位 · 关怀 {care} 项(现在应问候 {greetings} 项) · "
            "到期跟进 {due} 项(已逾期 {overdue} 项)",
            "{calls} to call · {care} care events ({greetings} to greet now) · "
            "{due} follow-ups due ({overdue} overdue)",
        ),
        "nothing": (
            "今天没有需要联系的客户、关怀事项或到期跟进。",
            "Nothing to do today: no customer to call, no care event and no follow-up due.",
        ),
        "confidential": (
            "内部资料:含客户电话,仅供本人使用,请勿外传。",
            "Internal: contains customers' phone numbers; for your own use, do not forward.",
        ),
        # the three sections
        "section.calls": ("待联系客户(按拨打顺序)", "Customers to call (in calling order)"),
        "section.calls_note": (
            "流失预警客户,按预计未来12个月价值从高到低:先打能挽回最多的。",
            "Churn warnings, highest expected 12-month value first: call who can still "
            "be saved first.",
        ),
        "section.care": ("关怀日历(未来{days}天)", "Care calendar (next {days} days)"),
        "section.care_note": (
            "生日和首单纪念日,提前{lead}天问候;标“勿推销”的客户只问候,不附优惠。",
            "Birthdays and first-order anniversaries, greeted {lead} days before; customers "
            "marked “no offers” opted out of marketing: greet them without an offer.",
        ),
        "section.due": ("到期跟进(截至{until})", "Follow-ups due (until {until})"),
        "section.due_note": (
            "上次跟进时约定的下次联系日期:截至数据日期已过的为逾期,排在前面。",
            "The next contact date set at the last follow-up; dates up to the data date "
            "are overdue and come first.",
        ),
        "more_calls": (
            "另有 {count} 位预警客户:见团队工作簿的“流失预警”表。",
            "{count} more warned customers: see the Watchlist sheet of the team workbook.",
        ),
        "no_calls": ("没有流失预警客户。", "No churn warnings."),
        "no_care": ("未来几天没有关怀事项。", "No care events in the coming days."),
        "no_due": ("没有到期的跟进。", "No follow-ups due."),
        # columns
        "col.rank": ("序号", "#"),
        "col.customer_id": ("客户编号", "ID"),
        "col.customer": ("客户", "Customer"),
        "col.phone": ("电话", "Phone"),
        "col.tier": ("分层", "Tier"),
        "col.why": ("联系原因", "Why call"),
        "col.expected_12m": ("预计12个月价值", "Expected value, 12 m"),
        "col.last_followup": ("上次跟进", "Last follow-up"),
        "col.next_contact": ("下次联系", "Next contact"),
        "col.due_date": ("问候日期", "Greet on"),
        "col.event": ("事项", "Event"),
        "col.event_date": ("日期", "Date"),
        "col.contact_date": ("约定联系日", "Contact on"),
        "col.status": ("状态", "Status"),
        "col.note": ("备注", "Note"),
        # cell texts
        "event.birthday": ("生日", "Birthday"),
        "event.anniversary": ("首单{years}周年", "First-order anniversary ({years})"),
        "event.birthday_years": ("{years}岁生日", "Birthday ({years})"),
        "no_offers": ("勿推销", "no offers"),
        "status.overdue": ("已逾期", "overdue"),
        "status.coming": ("本周", "this week"),
        "greet_now": ("现在问候", "greet now"),
    }
)


def callsheet_text(key: str, language: str, **values: object) -> str:
    """The call sheet's text of ``key`` in ``language`` with ``values`` filled in."""
    return CALLSHEET_TEXTS.text(key, language, **values)
