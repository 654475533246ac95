"""The fixed texts of the PDF reports in zh-CN and English (the message catalogue).

KPI labels and definitions come from the registry (:mod:`crm_batch.kpi.definitions`),
segment and action names from the playbook (:mod:`crm_batch.kpi.playbook`); this module
holds only the report's own words: titles, headings, column names and the templates of
the automatic findings. Every key exists in both languages (a test checks it).
"""

from __future__ import annotations

from collections.abc import Iterable

from crm_batch.i18n import LANGUAGES, Language, language_index
from crm_batch.i18n.catalog import Catalog

ReportLanguage = Language
__all__ = [
    "LANGUAGES",
    "REPORT_TEXTS",
    "ReportLanguage",
    "absent_reason",
    "channel_label",
    "message",
    "messages",
    "partial_reason",
]

_TEXTS: dict[str, tuple[str, str]] = {
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
    "cover.company": ("公司", "Company"),
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
    "section.alive": ("客户还在吗:预测仍活跃概率", "Who is still with us: predicted P(alive)"),
    "section.calibration": (
        "预测校验:本季度预测与实际",
        "Forecast check: the quarter, predicted against actual",
    ),
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
    # the call list's warning level and signals in one cell, as the call sheets show them
    "col.why": ("联系原因", "Why call"),
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
    "col.roi": ("归因ROI", "Attributed ROI"),
    "col.campaign_id": ("活动编号", "ID"),
    "col.customer_id": ("客户编号", "ID"),
    "col.phone": ("电话", "Phone"),
    "col.contacted": ("上次跟进", "Last contact"),
    "col.outcome": ("跟进结果", "Outcome"),
    "col.next_contact": ("下次联系", "Next contact"),
    "col.high_warnings": ("高风险预警", "High warnings"),
    "col.contacted_7d": ("近7天已跟进", "Contacted, 7 days"),
    "col.contacted_share": ("跟进占比", "Share contacted"),
    "col.outcomes": ("跟进结果", "Outcomes"),
    "text.owner_followups": (
        "高风险预警跟进情况(按负责人,近7天保存的跟进)",
        "Follow-up of high warnings by owner (follow-ups saved in the last 7 days)",
    ),
    "col.started": ("开始日期", "Start"),
    "text.attributed_roi": (
        "归因ROI = (归因销售额 − 成本) ÷ 成本。订单销售额只归于下单前最近一次触达(末次触达归因),"
        "未计入自然发生的购买,因此高估活动效果;成本为活动总成本按触达数分摊。",
        "Attributed ROI = (attributed revenue − cost) ÷ cost. An order's revenue goes to the "
        "last touch before it (last-touch attribution), purchases that would have happened "
        "anyway included, so it overstates a campaign's effect; cost is the campaign's total "
        "cost spread over its touches.",
    ),
    "col.opt_out_rate": ("退订率", "Opt-out rate"),
    "col.expected_12m": ("预计12个月价值", "Expected value, 12 m"),
    "col.buyers": ("成交客户", "Buyers"),
    "col.p_alive": ("仍活跃概率", "P(alive)"),
    "col.p_alive_mean": ("平均仍活跃概率", "Mean P(alive)"),
    "col.alive_to_25": ("≤25%", "≤ 25 %"),
    "col.alive_25_50": ("25–50%", "25–50 %"),
    "col.alive_50_75": ("50–75%", "50–75 %"),
    "col.alive_over_75": (">75%", "> 75 %"),
    "col.likely_lost": ("可能已流失", "Likely lost"),
    "col.likely_lost_revenue": ("其近12个月销售额", "Their revenue, 12 months"),
    "col.sent": ("发送", "Sent"),
    "col.control": ("对照组", "Control"),
    "col.conversion_sent": ("发送组转化率", "Conversion, sent"),
    "col.conversion_control": ("对照组转化率", "Conversion, control"),
    "col.uplift": ("提升(百分点,95%区间)", "Uplift, points (95 % interval)"),
    "col.incremental_revenue": ("增量销售额(95%区间)", "Incremental revenue (95 % interval)"),
    "col.incremental_roi": ("增量ROI", "Incremental ROI"),
    "col.predicted_days": ("预测购买天数", "Predicted purchase days"),
    "col.actual_days": ("实际购买天数", "Actual purchase days"),
    "col.actual_vs_predicted": ("实际/预测", "Actual / predicted"),
    "tier.all": ("全部", "All"),
    "text.calls_order": (
        "按预计12个月价值排序:先打给仍有价值可挽回的客户;风险销售额为其过去一年的销售额。",
        "Ordered by expected value over the next 12 months: first the customers a call can "
        "still win back; revenue at risk is what they spent in the past year.",
    ),
    "text.alive_intro": (
        "BG/NBD模型根据每位成交客户的购买频次与最近购买时间,估计其仍未流失的概率(P(alive))。"
        "下表按价值等级列出分布;低于{threshold}视为可能已流失。",
        "The BG/NBD model estimates from each buyer's purchase frequency and recency the "
        "probability that they have not left for good (P(alive)). Below, its distribution "
        "by value tier; below {threshold} counts as likely lost.",
    ),
    "text.alive_lost": (
        "可能已流失的高价值客户(金钻与白银,按近12个月销售额)",
        "High-value customers most likely lost (diamond and silver, by 12-month revenue)",
    ),
    "text.no_alive": (
        "价值模型未能拟合(复购客户太少),暂无仍活跃概率。",
        "The value models could not be fitted (too few repeat buyers): no P(alive) yet.",
    ),
    "text.uplift_title": (
        "增量效果:发送组与对照组(留出未发送的随机客户)",
        "Incremental results: sent against a control group (random customers held out)",
    ),
    "text.uplift_note": (
        "对照组是同批选中、刻意不发送的随机客户。提升 = 发送组7天转化率 − 对照组转化率;"
        "增量销售额 = 每个触达的7天销售额之差 × 发送数。区间为95%置信区间;"
        "无对照组(或对照组少于30个)的渠道仅有归因结果,并非增量。",
        "The control group is a random part of the same selection, deliberately not sent. "
        "Uplift = 7-day conversion of the sent minus the control; incremental revenue = the "
        "difference in 7-day revenue per touch × touches sent. Intervals are 95 %. A channel "
        "without a control group (or with fewer than 30 held out) has attributed results "
        "only, not incremental ones.",
    ),
    "text.not_incremental": ("仅归因,非增量", "attributed, not incremental"),
    "text.control_too_small": (
        "对照组少于{minimum}个,尚无法判断",
        "control under {minimum}: too small to tell",
    ),
    "text.calibration_intro": (
        "季度初以当时的成交客户拟合BG/NBD模型,预测各客户本季度的购买天数,与实际对比"
        "(按季度初的价值等级)。接近1说明预测值可信。",
        "The BG/NBD model fitted on the buyers of the day before the quarter forecast each "
        "one's purchase days in the quarter; here against what they really bought (by value "
        "tier at the quarter's start). Near 1 means the expected figures can be trusted.",
    ),
    "text.no_calibration": (
        "本季度初复购客户太少,无法拟合模型,故无预测校验。",
        "Too few repeat buyers at the quarter's start to fit the model: no forecast check.",
    ),
    "col.conversion_rate": ("转化率", "Conversion rate"),
    "lifecycle.high": ("高价值(金钻+白银)", "High value (diamond + silver)"),
    "lifecycle.low": ("低价值(铜)", "Low value (bronze)"),
    "signal.no_order_3m": ("3个月未下单", "no order for 3 months"),
    "signal.complaint": ("投诉超24小时未解决", "complaint open > 24 h"),
    "signal.both": ("未下单且投诉未解决", "no orders and an open complaint"),
    "none": ("无", "none"),
    # section texts
    "text.top_calls": (
        "优先致电名单(按预计12个月价值排序,前 {count} 位)",
        "Accounts to call first (by expected value over the next 12 months, top {count})",
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
    # charts described in words: the PDF's alt text, read out by screen readers
    "alt.distribution": (
        "条形图:左侧为各客户等级和价值层级的客户数,右侧为其近12个月销售额占比;数值见下表。",
        "Bar chart: customers per tier and value tier on the left, their share of 12-month "
        "revenue on the right; the figures are in the tables below.",
    ),
    "alt.pareto": (
        "曲线图:客户按近12个月销售额从高到低排列后的累计销售额占比,虚线标出头部20%客户的"
        "销售额占比;数值见下表。",
        "Line chart: the cumulative share of 12-month revenue over the customers ranked by "
        "revenue, highest first; dashed lines mark the share of the top 20%; the figures "
        "are in the table below.",
    ),
    "alt.funnel": (
        "漏斗条形图:本期营销触达、打开、点击和转化的客户数及其占触达的比例;各活动数值见下表。",
        "Funnel bar chart: customers touched, opened, clicked and converted in the period, "
        "each with its share of those touched; each campaign's figures are in the tables "
        "below.",
    ),
    "alt.targets": (
        "条形图:每个目标指标本季度的达成率,100%处有参考线;数值见下表。",
        "Bar chart: each target KPI's attainment this quarter, with a line at 100%; the "
        "figures are in the table below.",
    ),
    "alt.trends": (
        "一组折线小图:主要指标近8个季度的走势,每个指标一图;数值见下表。",
        "Small line charts: the main KPIs over the last 8 quarters, one chart per KPI; the "
        "figures are in the table below.",
    ),
    "alt.migration": (
        "热力图:季度初到季度末客户在各等级之间的迁移人数,颜色越深人数越多;数值见右侧。",
        "Heat map: customers moving between tiers from the start to the end of the "
        "quarter, darker for more customers; the moves are listed beside it.",
    ),
    "alt.cohorts": (
        "热力图:按首次购买季度分组的客户在之后各季度的留存率,颜色越深留存越高;数值见下表。",
        "Heat map: the share of each first-purchase quarter's customers still buying in "
        "each later quarter, darker for more; the figures are in the table below.",
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
        "渠道 {channel} 的营销ROI为 {roi}:成本 {cost},归因销售额 {revenue}。",
        "Channel {channel} has a marketing ROI of {roi}: it cost {cost} and brought in "
        "{revenue} of attributed sales.",
    ),
    "finding.unpaid_channel": (
        "渠道 {channel} 本期已投入成本 {cost},尚无归因销售额(ROI {roi})。",
        "Channel {channel} has cost {cost} this period and no sale is attributed to it yet "
        "(ROI {roi}).",
    ),
    "finding.dormant_high_value": (
        "{count} 位高价值客户处于沉睡或流失状态(近12个月销售额 {amount})。",
        "{count} high-value customers are dormant or churned ({amount} of 12-month revenue).",
    ),
    # --- quarterly review (季度复盘报告) ---
    "quarterly.title": ("季度复盘报告", "Quarterly review"),
    "quarterly.subject": (
        "季度指标与目标达成、客户等级迁移、留存、挽回、营销活动与大客户筛选",
        "Quarterly KPIs against targets, tier migration, retention, win-back, campaigns "
        "and big-customer screening",
    ),
    "cover.quarter": ("复盘季度", "Quarter"),
    "cover.compared": ("对比季度", "Compared with"),
    "section.glance": ("本季度概览", "The quarter at a glance"),
    "section.targets": ("目标达成情况", "Targets and attainment"),
    "section.actions": ("下季度行动计划", "Next quarter's actions"),
    "section.comparison": ("全部指标对比", "Every KPI compared"),
    "section.trends": ("近8个季度指标趋势", "KPI trends over the last 8 quarters"),
    "section.migration": ("客户等级迁移", "Tier migration"),
    "section.cohorts": ("客户留存(同期群分析)", "Cohort retention"),
    "section.winback": ("流失客户挽回成果", "Win-back results"),
    "section.campaign_results": ("营销活动效果", "Campaign results"),
    "section.big_customers": ("大客户筛选", "Big-customer screening"),
    "section.teams": ("各团队对比", "Teams compared"),
    "col.rule": ("目标规则", "Rule"),
    "col.baseline": ("基准值", "Baseline"),
    "col.target": ("目标值", "Target"),
    "col.actual": ("实际值", "Actual"),
    "col.attainment": ("达成率", "Attainment"),
    "col.met": ("是否达标", "Met"),
    "col.gap": ("差距", "Gap"),
    "col.change": ("变化", "Change"),
    "col.move": ("迁移", "Move"),
    "col.direction": ("方向", "Direction"),
    "col.tier_move": ("等级变化", "Tier change"),
    "col.revenue_start": ("季初近12个月销售额", "12-month revenue, start"),
    "col.revenue_end": ("季末近12个月销售额", "12-month revenue, end"),
    "col.last_before": ("季度前最后下单", "Last order before"),
    "col.days_away": ("季初已未下单天数", "Days away at start"),
    "col.orders_q": ("本季度订单", "Orders in quarter"),
    "col.revenue_q": ("本季度销售额", "Revenue in quarter"),
    "col.rank": ("排名", "Rank"),
    "col.previous_rank": ("上季末排名", "Rank last quarter"),
    "col.rank_now": ("本季末排名", "Rank now"),
    "col.targets_met": ("达标目标数", "Targets met"),
    "glance.revenue": ("本季度净销售额", "Net revenue in the quarter"),
    "glance.revenue_note": ("已扣除退款", "refunds deducted"),
    "glance.vs": ("较 {period}", "vs {period}"),
    "rule.change_up": ("较 {period} 提升 {change}", "{change} up on {period}"),
    "rule.change_down": ("较 {period} 降低 {change}", "{change} down on {period}"),
    "rule.max": ("不高于 {value}", "at most {value}"),
    "rule.min": ("不低于 {value}", "at least {value}"),
    "tile.target": ("目标 {target}({rule})· {met}", "Target {target} ({rule}) · {met}"),
    "tile.bound": ("目标:{rule} · {met}", "Target: {rule} · {met}"),
    "tile.vs": ("较 {period} 同期", "vs {period} to the same day"),
    "rule.capped": (",封顶于量表上限 {value}", ", capped at the scale's maximum {value}"),
    "met.yes": ("达标", "met"),
    "met.no": ("未达标", "missed"),
    "migration.up": ("升级", "up"),
    "migration.down": ("降级", "down"),
    "tier.none": ("无等级", "no tier"),
    "big.new_entrant": ("新进入", "new"),
    "source.computed": (
        "{quarter}:按源数据计算(截至 {day})。",
        "{quarter}: computed from the source data as of {day}.",
    ),
    "source.snapshot": (
        "{quarter}:{day} 存储的指标快照。",
        "{quarter}: the KPI snapshot stored for {day}.",
    ),
    "source.recomputed": (
        "{quarter}:{day} 没有存储快照,本报告按源数据重新计算。",
        "{quarter}: no snapshot stored for {day}; recomputed from the source data for this report.",
    ),
    "action.focus": ("重点客户:{group},共 {count} 位。", "Focus: {group}, {count} customers."),
    "action.focus_candidates": (
        "重点客户:推荐大使候选人 {count} 位。",
        "Focus: {count} advocate candidates.",
    ),
    "action.focus_complaints": (
        "当前未解决投诉 {count} 起。",
        "{count} complaints are open now.",
    ),
    "action.channels": (
        "最弱渠道:{worst}({worst_value});最佳渠道:{best}({best_value})。",
        "Weakest channel: {worst} ({worst_value}); best: {best} ({best_value}).",
    ),
    "action.campaign_roi.title": ("调整渠道与预算", "Shift budget between channels"),
    "action.campaign_roi": (
        "复盘各渠道与客户群的投入产出,替换或削减低效渠道,把预算转向ROI高的渠道和高价值客户群。",
        "Review cost and return by channel and customer group, replace or cut the weakest "
        "channels and move the budget to the channels and groups with the best ROI.",
    ),
    "action.opt_out_rate.title": ("降低营销打扰", "Reduce marketing fatigue"),
    "action.opt_out_rate": (
        "控制触达频次与时段,只向匹配的客户群发送相关内容,及时尊重退订,将扰民率控制在3%以内。",
        "Limit how often and when customers are contacted, send only relevant content to "
        "matching groups and honour opt-outs at once, to keep opt-outs within 3%.",
    ),
    "action.campaign_conversion_rate.title": (
        "优化触达内容与时机",
        "Improve content and timing",
    ),
    "action.campaign_conversion_rate": (
        "分析未转化原因(触达时机、内容匹配度),按客户分层定制内容并测试发送时间。",
        "Find why touches did not convert (timing, relevance), tailor the content to each "
        "tier and test the sending time.",
    ),
    "action.review.title": ("季度复盘分析", "Root-cause review"),
    "action.review": (
        "在季度复盘会上分析「{kpi}」未达标的原因,制定改进措施并指定负责人。",
        "Analyse at the quarterly review meeting why the KPI {kpi} missed its target; "
        "agree the measures and an owner.",
    ),
    "chart.tier_start": ("季初等级", "Tier at the start"),
    "chart.tier_end": ("季末等级", "Tier at the end"),
    "chart.months_since": ("首单后月数", "Months since the first order"),
    "chart.cohort": ("首单月份(客户数)", "First-order month (customers)"),
    "chart.attainment": ("目标达成率", "Attainment of the target"),
    "text.targets_summary": (
        "{total} 项有目标的指标中 {met} 项达标。",
        "{met} of {total} targeted KPIs met their target.",
    ),
    "text.attainment_note": (
        "达成率 = 实际值 ÷ 目标值(越高越好的指标),或目标值 ÷ 实际值(越低越好的指标);"
        "比值无意义时(如分母为0或ROI为负)显示为 –。上限/下限类目标只看是否达标,不计达成率。",
        "Attainment = actual ÷ target where higher is better, target ÷ actual where lower "
        "is better; shown as – where the ratio means nothing (a zero denominator, a negative "
        "ROI). A bound (at most / at least) is met or missed, with no attainment.",
    ),
    "text.no_targets": (
        "未设置目标(见配置文件 [targets])。",
        "No targets are set (see [targets] in the settings file).",
    ),
    "text.actions_intro": (
        "以下指标未达到目标,按达成率从低到高排列;每项给出差距与对应的行动方案。",
        "These KPIs missed their target, lowest attainment first; each comes with its gap "
        "and the playbook action that addresses it.",
    ),
    "text.no_actions": (
        "所有有目标的指标均已达标,下季度保持现有行动。",
        "Every targeted KPI met its target: keep the current actions next quarter.",
    ),
    "text.sources_title": ("数据来源", "Where the figures come from"),
    "text.trend_caption": (
        "每个季度取该季度最后一天的数值;虚线为本季度目标。",
        "Each quarter's value as of its last day; the dashed line is this quarter's target.",
    ),
    "text.migration_caption": (
        "行:季初等级;列:季末等级;对角线以外为升级或降级的客户数。",
        "Rows: tier at the quarter's start; columns: tier at its end; off the diagonal are "
        "the customers who moved.",
    ),
    "text.slipped": (
        "降级客户(按季初近12个月销售额排序,前 {count} 位)",
        "Accounts that slipped (by 12-month revenue at the start, top {count})",
    ),
    "text.no_slipped": ("本季度没有客户降级。", "No account slipped to a lower tier."),
    "text.cohort_caption": (
        "每行为一个首单月份的客户群,格内为此后各月仍有购买的客户占比;空白为尚未到达的月份。",
        "Each row is the customers whose first order fell in that month; a cell is the "
        "share buying in a later month; blank cells are months still to come.",
    ),
    "text.no_cohorts": ("近12个月没有新的首单客户。", "No first orders in the last 12 months."),
    "text.won_back": (
        "本季度挽回的客户(按本季度销售额排序,前 {count} 位)",
        "Customers won back in the quarter (by revenue in the quarter, top {count})",
    ),
    "text.no_won_back": (
        "本季度没有挽回流失客户。",
        "No churned customer came back in the quarter.",
    ),
    "text.big_top": (
        "{period} 末大客户名单(按近12个月销售额,前 {count} 位)",
        "Top {count} accounts by 12-month revenue at the end of {period}",
    ),
    "text.big_summary": (
        "名单中有 {entrants} 位客户在 {period} 末不在前 {count} 名之内(新进入)。",
        "{entrants} accounts on the list were not in the top {count} at the end of {period} "
        "(new entrants).",
    ),
    "text.big_left": ("跌出大客户名单的客户", "Accounts that left the top list"),
    "text.no_big": ("没有近12个月有销售额的客户。", "No customer has 12-month revenue."),
    "text.no_teams": ("没有团队数据。", "No team data."),
    # optional tables not mapped (absent_reason): the reason a KPI or section has no data
    "missing.leads": ("未映射线索表", "no leads mapped"),
    "missing.tickets": ("未映射工单表", "no tickets mapped"),
    "missing.campaigns": ("未映射营销活动表", "no campaigns mapped"),
    "missing.touches": ("未映射营销触达表", "no touches mapped"),
    "partial.tickets": ("不含投诉信号(未映射工单表)", "without complaints (no tickets mapped)"),
    "met.no_data": ("无数据", "no data"),
}
REPORT_TEXTS = Catalog(_TEXTS)

CHANNELS: dict[str, tuple[str, str]] = {
    "sms": ("短信", "SMS"),
    "email": ("邮件", "E-mail"),
    "wechat": ("微信", "WeChat"),
    "call": ("电话", "Call"),
    "event": ("活动", "Event"),
}


def message(key: str, language: str, **values: object) -> str:
    """The report text of ``key`` in ``language`` with ``values`` filled in."""
    return REPORT_TEXTS.text(key, language, **values)


def messages(language: str) -> dict[str, str]:
    """Every report text of ``language`` by key (templates receive this as ``t``)."""
    return REPORT_TEXTS.all(language)


def channel_label(channel: str, language: str) -> str:
    """The display name of a campaign channel; the raw value if unknown."""
    names = CHANNELS.get(channel)
    if names is None:
        return channel
    return names[language_index(language)]


def absent_reason(tables: Iterable[str], language: str) -> str:
    """Why a KPI or section has no data: its optional tables are not mapped, e.g.
    "no leads mapped" / "未映射线索表" (several joined with "; ")."""
    separator = ";" if language == "zh-CN" else "; "
    return separator.join(message(f"missing.{table}", language) for table in tables)


def partial_reason(tables: Iterable[str], language: str) -> str:
    """What a KPI was computed without: its unmapped optional tables' signals."""
    separator = ";" if language == "zh-CN" else "; "
    return separator.join(message(f"partial.{table}", language) for table in tables)
