"""The texts staff see in a team workbook besides its layout: the problems the harvest
writes into the Save problem column, and the buttons' message boxes (zh-CN, English).

Sheet names, headers and drop-down values are part of the workbook layout
(:mod:`crm_batch.excel.layout`); the report's words are in :mod:`crm_batch.i18n.messages`.
"""

from __future__ import annotations

from crm_batch.i18n.catalog import Catalog

#: Why a Follow-ups row could not be saved (the Save problem column).
HARVEST_TEXTS = Catalog(
    {
        "no_customer": ("缺少客户编号", "no customer ID"),
        "customer_too_long": (
            "客户编号超过{limit}个字符",
            "the customer ID is longer than {limit} characters",
        ),
        "unknown_outcome": (
            "未知的跟进结果“{value}”:请从下拉列表中选择({choices})",
            "unknown outcome “{value}”: choose one from the list ({choices})",
        ),
        "bad_date": (
            "“{value}”不是有效日期:请输入日期,例如 2026-07-15",
            "“{value}” is not a date: type a date such as 2026-07-15",
        ),
        "entered_by_too_long": (
            "填写人超过{limit}个字符",
            "“Entered by” is longer than {limit} characters",
        ),
        "note_too_long": ("备注超过{limit}个字符", "the note is longer than {limit} characters"),
        "nothing": (
            "没有可保存的内容:请填写跟进结果、备注或下次联系日期",
            "nothing to save: fill in an outcome, a note or a next contact date",
        ),
    }
)

#: The message boxes of the Refresh data, Save follow-ups and Make my PDF buttons.
BUTTON_TEXTS = Catalog(
    {
        "refresh.done": (
            "已刷新{team}的数据(截至{as_of}):{customers}位客户,{watchlist}位流失预警,"
            "{care}条关怀提醒,{advocates}位推荐大使,{followups}行跟进记录。",
            "Refreshed {team} (data as of {as_of}): {customers} customers, {watchlist} on the "
            "watchlist, {care} care dates, {advocates} advocates, {followups} follow-up rows.",
        ),
        "refresh.kept": (
            "另有{count}行未保存的跟进记录属于已不在本团队的客户,已保留在表格末尾,请先保存。",
            "{count} unsaved follow-up rows belong to customers no longer in this team; they "
            "are kept at the end of the table: save them first.",
        ),
        "refresh.dashboard_kept": (
            "仪表板的布局与当前版本不同,将在夜间重建时更新。",
            "The Dashboard is laid out differently from this version's: it is updated by the "
            "nightly rebuild.",
        ),
        "save.nothing": (
            "没有需要保存的内容:跟进记录表中没有填写任何跟进结果、备注、下次联系日期或填写人。",
            "Nothing to save: no Follow-ups row has an outcome, note, next contact date or "
            "name filled in.",
        ),
        "save.done": (
            "已保存{inserted}条跟进记录到数据库({already}条之前已保存)。",
            "Saved {inserted} follow-ups to the database ({already} were saved before).",
        ),
        "save.problems": (
            "{count}行无法保存,请查看“保存问题”列并修改后重试:第{rows}行。",
            "{count} rows could not be saved: see the Save problem column, correct them and "
            "click Save again (rows {rows}).",
        ),
        "pdf.ready": ("您的报告已生成:{path}", "Your report is ready: {path}"),
        "error.expected": ("{action}未完成:{reason}", "{action} did not finish: {reason}"),
        "error.unexpected": (
            "{action}因意外错误而停止({kind})。详细信息见日志:{log}",
            "{action} stopped because of an unexpected error ({kind}). The details are in "
            "the log: {log}",
        ),
        "error.no_log": ("未写入日志文件", "no log file was written"),
    }
)
