"""The fixed texts of the PDF reports in zh-CN and English (the message catalogue).

KPI labels and definitions come from the registry (:mod:`crm_batch.kpi.definitions`),
segment and action names from the playbook (:mod:`crm_batch.kpi.playbook`); this module
holds only the report's own words: titles, headings, column names and the templates of
the automatic findings. Every key exists in both languages (a test checks it).
"""

from __future__ import annotations

from typing import Literal

ReportLanguage = Literal["zh-CN", "en"]
LANGUAGES: tuple[ReportLanguage, ...] = ("zh-CN", "en")

_MESSAGES: dict[str, tuple[str, str]] = {
    # cover and running header
    "diagnosis.title": ("客户现状诊断报告", "Customer status diagnosis"),
    "diagnosis.subject": (
        "客户分层、流失预警、复购、转介绍、服务与营销活动诊断",
        "Customer tiers, churn warnings, repurchase, referrals, service and campaigns",
    ),
    "scope.all": ("全公司", "Company-wide"),
    "scope.team": ("团队", "Team"),
    "cover.as_of": ("数据截至", "Data as of"),
    "cover.period": ("统计期间", "Period"),
    "cover.generated": ("生成时间", "Generated"),
    "cover.confidential": (
        "内部资料:含客户名称,仅供管理人员使用,请勿外传。",
        "Internal: contains customer names; for managers only, do not forward outside.",
    ),
    "toc.title": ("目录", "Contents"),
    "page": ("页", "Page"),
    # sections
    "section.findings": ("主要发现", "Key findings"),
    "section.headline": ("核心指标", "Headline KPIs"),
    "section.tiers": ("客户分层与价值分布", "Tiers and value distribution"),
    "section.pareto": ("销售额集中度(二八分析)", "Revenue concentration (Pareto)"),
    "section.matrix": ("价值 × 生命周期矩阵与行动建议", "Value x lifecycle matrix and actions"),
    "section.churn": ("流失预警与风险销售额", "Churn warnings and revenue at risk"),
    "section.repurchase": ("复购与转化", "Repurchase and conversion"),
    "section.referral": ("老带新转介绍计划", "Referral programme"),
    "section.service": ("客户服务", "Service"),
    "section.campaigns": ("营销活动漏斗与渠道ROI", "Campaign funnel and ROI by channel"),
    "section.definitions": ("指标定义", "KPI definitions"),
    # columns
    "col.kpi": ("指标", "KPI"),
    "col.value": ("数值", "Value"),
    "col.definition": ("定义", "Definition"),
    "col.tier": ("分层", "Tier"),
    "col.value_tier": ("价值等级", "Value tier"),
    "col.customers": ("客户数", "Customers"),
    "col.customer_share": ("客户占比", "Share of customers"),
    "col.revenue_12m": ("近12个月销售额", "Revenue, 12 months"),
    "col.revenue_share": ("销售额占比", "Revenue share"),
    "col.group": ("客户群", "Group"),
    "col.action": ("行动建议", "Playbook action"),
    "col.customer": ("客户", "Customer"),
    "col.team": ("团队", "Team"),
    "col.owner": ("负责人", "Owner"),
    "col.level": ("风险等级", "Level"),
    "col.signals": ("预警信号", "Signals"),
    "col.last_order": ("最近下单", "Last order"),
    "col.revenue_at_risk": ("风险销售额", "Revenue at risk"),
    "col.referrals": ("成功转介绍", "Successful referrals"),
    "col.orders_12m": ("近12个月订单", "Orders, 12 months"),
    "col.channel": ("渠道", "Channel"),
    "col.campaign": ("活动", "Campaign"),
    "col.touches": ("触达", "Touches"),
    "col.opened": ("打开", "Opened"),
    "col.clicked": ("点击", "Clicked"),
    "col.conversions": ("转化", "Conversions"),
    "col.revenue": ("销售额", "Revenue"),
    "col.cost": ("成本", "Cost"),
    "col.roi": ("ROI", "ROI"),
    "col.opt_out_rate": ("退订率", "Opt-out rate"),
    "col.conversion_rate": ("转化率", "Conversion rate"),
    "lifecycle.high": ("高价值(金钻+白银)", "High value (diamond + silver)"),
    "lifecycle.low": ("低价值(铜)", "Low value (bronze)"),
    "signal.no_order_3m": ("3个月未下单", "no order for 3 months"),
    "signal.complaint": ("投诉超24小时未解决", "complaint open > 24 h"),
    "signal.both": ("未下单且投诉未解决", "no orders and an open complaint"),
    "none": ("无", "none"),
    # section texts
    "text.top_calls": (
        "优先致电名单(按风险销售额排序,前 {count} 位)",
        "Accounts to call first (by revenue at risk, top {count})",
    ),
    "text.no_warnings": ("当前没有流失预警客户。", "No customer has a churn warning."),
    "text.no_candidates": ("当前没有符合条件的推荐大使候选人。", "No advocate candidates yet."),
    "text.no_campaigns": ("本期没有营销活动触达。", "No campaign touches in the period."),
    "text.candidates": (
        "建议邀请的推荐大使候选人(复购、成功转介绍 ≥ 2、高价值)",
        "Advocate candidates to invite (repeat buyers, >= 2 successful referrals, high value)",
    ),
    "text.no_findings": (
        "没有指标触发预设阈值。",
        "No KPI crossed a finding threshold.",
    ),
    "text.pareto_caption": (
        "客户按近12个月销售额从高到低排列;曲线为累计销售额占比。",
        "Customers ranked by 12-month revenue, highest first; the curve is the cumulative "
        "revenue share.",
    ),
    "text.more_warnings": (
        "另有 {count} 位预警客户未列出,详见团队工作簿的预警清单。",
        "{count} more customers with a warning are in the team workbooks' watchlist.",
    ),
    # chart axes
    "chart.customers_ranked": ("客户累计占比", "Share of customers (ranked by revenue)"),
    "chart.revenue_cumulative": ("累计销售额占比", "Cumulative share of revenue"),
    "chart.top_share": ("头部 {share}", "top {share}"),
    "chart.customers": ("客户数", "Customers"),
    "chart.revenue_share": ("销售额占比", "Revenue share"),
    "chart.funnel_stage": ("漏斗阶段", "Funnel stage"),
    "chart.count": ("人数", "Customers"),
    "funnel.touches": ("触达", "Touched"),
    "funnel.opened": ("打开", "Opened"),
    "funnel.clicked": ("点击", "Clicked"),
    "funnel.conversions": ("7天内成交", "Bought within 7 days"),
    # findings (templates filled with formatted numbers)
    "finding.a_tier_quiet_revenue": (
        "A类客户近12个月销售额的 {share} 来自已3个月未下单的客户({customers} 位)。",
        "{share} of A-tier 12-month revenue sits with customers who have not ordered for "
        "3 months ({customers} customers).",
    ),
    "finding.pareto_concentration": (
        "头部 20% 客户贡献了 {share} 的近12个月销售额,收入高度集中。",
        "The top 20% of customers bring {share} of 12-month revenue: revenue is highly "
        "concentrated.",
    ),
    "finding.revenue_at_risk": (
        "{count} 位预警客户的风险销售额为 {amount},占近12个月销售额的 {share}。",
        "{count} customers with a churn warning hold {amount} of revenue at risk, "
        "{share} of 12-month revenue.",
    ),
    "finding.high_warnings": (
        "{count} 位客户为高风险流失预警,需客户经理本周1对1联系。",
        "{count} customers have a high-level churn warning: their owners should call them "
        "1-to-1 this week.",
    ),
    "finding.repurchase_low": (
        "期内复购率为 {rate},低于 {threshold} 的关注线。",
        "The repurchase rate of the period is {rate}, below the {threshold} watch line.",
    ),
    "finding.complaints_slow": (
        "仅 {rate} 的投诉在24小时内解决(目标 {threshold})。",
        "Only {rate} of complaints were resolved within 24 h (target {threshold}).",
    ),
    "finding.open_complaints": (
        "仍有 {count} 起投诉未解决。",
        "{count} complaints are still open.",
    ),
    "finding.referral_share_low": (
        "期内新客户中转介绍占比为 {rate},低于 {threshold}:可邀请 {candidates} 位推荐大使候选人。",
        "{rate} of the period's new customers were referred, below {threshold}: "
        "{candidates} advocate candidates can be invited.",
    ),
    "finding.opt_out_high": (
        "营销触达退订率为 {rate},超过 {threshold} 的上限。",
        "The campaign opt-out rate is {rate}, above the {threshold} limit.",
    ),
    "finding.negative_roi_channel": (
        "渠道 {channel} 的营销ROI为 {roi}:成本高于归因销售额。",
        "Channel {channel} has a marketing ROI of {roi}: it cost more than it brought in.",
    ),
    "finding.dormant_high_value": (
        "{count} 位高价值客户处于沉睡或流失状态(近12个月销售额 {amount})。",
        "{count} high-value customers are dormant or churned ({amount} of 12-month revenue).",
    ),
}

CHANNELS: dict[str, tuple[str, str]] = {
    "sms": ("短信", "SMS"),
    "email": ("邮件", "E-mail"),
    "wechat": ("微信", "WeChat"),
    "call": ("电话", "Call"),
    "event": ("活动", "Event"),
}


def message(key: str, language: str, **values: object) -> str:
    """The text of ``key`` in ``language`` with ``values`` filled in (KeyError if unknown)."""
    zh, en = _MESSAGES[key]
    text = zh if language == "zh-CN" else en
    return text.format(**values) if values else text


def messages(language: str) -> dict[str, str]:
    """Every fixed text of ``language`` by key (templates receive this as ``t``)."""
    return {key: (zh if language == "zh-CN" else en) for key, (zh, en) in _MESSAGES.items()}


def channel_label(channel: str, language: str) -> str:
    """The display name of a campaign channel; the raw value if unknown."""
    names = CHANNELS.get(channel)
    if names is None:
        return channel
    return names[0] if language == "zh-CN" else names[1]
