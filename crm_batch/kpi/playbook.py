"""The playbook: what staff do for each customer group, in zh-CN and English.

The actions come from the business plans in ``../shared/seeds/``:

* the value x lifecycle model ("价值+生命周期" 8 类核心客户群体): high-value customers get
  exclusive rights (专属权益, VIP 服务), new customers first-order offers and guidance
  (首单优惠与体验引导), dormant customers wake-up benefits (唤醒福利: 专属折扣、新品试用);
* A-tier service (专属客户经理、优先售后), B-tier growth support (产品使用培训、行业资讯);
* churn warning and win-back (流失预警与挽回): 1-to-1 talks with high-risk customers and a
  win-back offer (专属折扣券); complaints resolved within 24 h (24 小时内解决);
* diamond/silver/bronze/iron strategies (金钻/白银/铜/铁客户营销策略) and referrals
  (老顾客转介).

Keys are stable identifiers (the workbooks' next-best-action column and follow-up
drop-downs store them); texts are looked up with :func:`action_text`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Action:
    """One playbook action: a short title and a one-sentence instruction per language."""

    key: str
    title_zh: str
    title_en: str
    detail_zh: str
    detail_en: str

    def title(self, language: str) -> str:
        """The title in ``zh-CN`` or ``en``."""
        return self.title_zh if language == "zh-CN" else self.title_en

    def detail(self, language: str) -> str:
        """The instruction in ``zh-CN`` or ``en``."""
        return self.detail_zh if language == "zh-CN" else self.detail_en


_ACTIONS = (
    # the 8 value x lifecycle groups
    Action(
        "vip_onboarding",
        "高价值新客专属欢迎",
        "VIP onboarding",
        "客户经理致电欢迎,1对1产品使用指导,邀请加入高等级会员并了解定制化需求。",
        "Welcome call from the account owner, 1-to-1 product guidance, invitation to the "
        "top membership level and a talk about tailored needs.",
    ),
    Action(
        "dedicated_account_manager",
        "专属客户经理与优先服务",
        "Dedicated account manager and priority service",
        "安排专属客户经理、优先售后和定制化推荐;节日与生日提前2天问候;邀请推荐新客户。",
        "Assign a dedicated account manager, priority after-sales service and tailored "
        "recommendations; greet 2 days before holidays and birthdays; invite referrals.",
    ),
    Action(
        "vip_winback_call",
        "1对1沟通 + 专属挽回优惠",
        "1-to-1 call with an exclusive win-back offer",
        "客户经理1对1电话沟通,了解未再购买的原因,提供专属折扣券或新品试用。",
        "The account owner calls 1-to-1, asks why the customer stopped buying and offers "
        "an exclusive discount voucher or a new-product trial.",
    ),
    Action(
        "vip_recovery_visit",
        "高价值流失客户挽回",
        "Recover a lost high-value customer",
        "由主管出面拜访或致电,查明流失原因(含未解决投诉),制定个性化挽回方案和专属优惠。",
        "A manager visits or calls, finds the reason for leaving (including unresolved "
        "complaints) and makes a personal win-back plan with an exclusive offer.",
    ),
    Action(
        "first_order_follow_up",
        "首单跟进与产品引导",
        "First-order follow-up and product guidance",
        "首单后回访,提供产品使用指导,发放复购优惠券引导第二次购买。",
        "Follow up after the first order, give product guidance and send a repurchase "
        "voucher to lead to the second order.",
    ),
    Action(
        "repurchase_incentive",
        "复购激励 + 交叉营销",
        "Repurchase incentive and cross-selling",
        "会员积分加倍、专属折扣,推荐关联产品;推送产品培训和行业资讯,培育成高价值客户。",
        "Double member points and member discounts, recommend related products; send "
        "product training and industry news to grow the customer's value.",
    ),
    Action(
        "reactivation_offer",
        "唤醒福利",
        "Wake-up offer",
        "发送唤醒福利(梯度优惠券、新品试用),3天内连续触达2次,选用短信等低成本渠道。",
        "Send a wake-up benefit (stepped vouchers, new-product trial), two touches within "
        "3 days, through low-cost channels such as SMS.",
    ),
    Action(
        "low_cost_winback",
        "低成本召回",
        "Low-cost win-back",
        "纳入批量召回活动(短信/邮件优惠券),定期回访保持联系,不投入高成本资源。",
        "Include in a bulk win-back campaign (SMS/e-mail voucher) and keep in touch with "
        "periodic calls, without costly resources.",
    ),
    # registered customers and leads without a paid order (iron)
    Action(
        "prospect_nurture",
        "潜客需求唤醒",
        "Nurture the prospect",
        "发送个性化解决方案手册,提供首单优惠(满减券、赠品),定期沟通回访。",
        "Send a personalised solution brochure, a first-order offer (voucher or gift) and "
        "keep in touch regularly.",
    ),
    # RFM segments
    Action(
        "reward_and_refer",
        "回馈并邀请转介",
        "Reward and ask for referrals",
        "赠送会员专属礼品与活动邀请,优先体验新品,邀请其推荐新客户(口碑营销)。",
        "Send member gifts and event invitations, early access to new products, and ask "
        "for referrals (word of mouth).",
    ),
    Action(
        "upsell_membership",
        "升级会员与向上销售",
        "Upsell and membership upgrade",
        "推荐高价值产品与会员升级,积分加倍,征求产品意见。",
        "Recommend higher-value products and a membership upgrade, double points, ask for "
        "product feedback.",
    ),
    Action(
        "membership_offer",
        "会员计划与关联推荐",
        "Membership and related products",
        "邀请加入会员积分计划,根据购买记录推荐关联产品。",
        "Invite to the member points programme and recommend related products from the "
        "purchase history.",
    ),
    Action(
        "trial_offer",
        "体验装与品牌认知",
        "Trial offer and brand awareness",
        "提供免费体验或试用装,介绍品牌与服务,建立信任。",
        "Offer a free trial or sample, introduce the brand and services, build trust.",
    ),
    Action(
        "limited_time_offer",
        "限时个性化优惠",
        "Limited-time personal offer",
        "根据购买记录推送限时优惠,提醒其关注的产品。",
        "Send a limited-time offer based on the purchase history and remind the customer "
        "of products they care about.",
    ),
    Action(
        "personal_winback",
        "个性化挽回",
        "Personal win-back",
        "个性化联系(电话/微信),提供挽回优惠,了解需求变化。",
        "Contact personally (call/WeChat), offer a win-back discount and learn what has changed.",
    ),
    Action(
        "resolve_complaint",
        "24小时内解决投诉",
        "Resolve the complaint within 24 h",
        "立即跟进未解决的投诉,真诚致歉并给出解决方案,解决后回访确认满意。",
        "Follow up the open complaint now, apologise sincerely and solve it, then call back "
        "to confirm the customer is satisfied.",
    ),
)

ACTIONS: dict[str, Action] = {action.key: action for action in _ACTIONS}

#: value_group (``<high|low>_<lifecycle>``) -> action key: the 8 groups of the seeds.
GROUP_ACTIONS: dict[str, str] = {
    "high_new": "vip_onboarding",
    "high_active": "dedicated_account_manager",
    "high_dormant": "vip_winback_call",
    "high_churned": "vip_recovery_visit",
    "low_new": "first_order_follow_up",
    "low_active": "repurchase_incentive",
    "low_dormant": "reactivation_offer",
    "low_churned": "low_cost_winback",
}

#: The action for customers without a paid order (lifecycle ``prospect``, value tier iron).
PROSPECT_ACTION = "prospect_nurture"

#: RFM segment -> action key.
SEGMENT_ACTIONS: dict[str, str] = {
    "champions": "reward_and_refer",
    "loyal": "upsell_membership",
    "potential_loyalist": "membership_offer",
    "new": "first_order_follow_up",
    "promising": "trial_offer",
    "need_attention": "limited_time_offer",
    "about_to_sleep": "reactivation_offer",
    "at_risk": "personal_winback",
    "cannot_lose": "vip_winback_call",
    "hibernating": "reactivation_offer",
    "lost": "low_cost_winback",
}

#: Churn warning -> action key: a complaint first, else by warning level.
WARNING_ACTIONS: dict[str, str] = {
    "complaint": "resolve_complaint",
    "high": "vip_winback_call",
    "medium": "personal_winback",
    "low": "low_cost_winback",
}

#: Display names of the category values the segmentation produces.
LABELS: dict[str, tuple[str, str]] = {
    # RFM segments
    "champions": ("重要价值客户", "Champions"),
    "loyal": ("忠诚客户", "Loyal"),
    "potential_loyalist": ("潜力忠诚客户", "Potential loyalist"),
    "new": ("新客户", "New"),
    "promising": ("有潜力客户", "Promising"),
    "need_attention": ("需关注客户", "Need attention"),
    "about_to_sleep": ("即将沉睡客户", "About to sleep"),
    "at_risk": ("流失风险客户", "At risk"),
    "cannot_lose": ("不能失去的客户", "Cannot lose"),
    "hibernating": ("休眠客户", "Hibernating"),
    "lost": ("已流失客户", "Lost"),
    # lifecycle ("new" above serves both)
    "active": ("活跃客户", "Active"),
    "dormant": ("沉睡客户", "Dormant"),
    "churned": ("流失客户", "Churned"),
    "prospect": ("潜在客户", "Prospect"),
    # value tiers (seeds: 金钻、白银、铜、铁客户)
    "diamond": ("金钻客户", "Diamond"),
    "silver": ("白银客户", "Silver"),
    "bronze": ("铜客户", "Bronze"),
    "iron": ("铁客户", "Iron"),
    # tiers A/B/C
    "A": ("A类(高价值活跃)", "A (high value, active)"),
    "B": ("B类(潜力成长)", "B (growth potential)"),
    "C": ("C类(基础培育)", "C (basic)"),
    # value x lifecycle groups
    "high_new": ("高价值新客户", "High value, new"),
    "high_active": ("高价值活跃客户", "High value, active"),
    "high_dormant": ("高价值沉睡客户", "High value, dormant"),
    "high_churned": ("高价值流失客户", "High value, churned"),
    "low_new": ("低价值新客户", "Low value, new"),
    "low_active": ("低价值活跃客户", "Low value, active"),
    "low_dormant": ("低价值沉睡客户", "Low value, dormant"),
    "low_churned": ("低价值流失客户", "Low value, churned"),
    # churn warning levels
    "high": ("高", "High"),
    "medium": ("中", "Medium"),
    "low": ("低", "Low"),
}


def action_text(key: str, language: str) -> str:
    """``"<title>: <detail>"`` of action ``key`` in ``zh-CN`` or ``en`` (KeyError if unknown)."""
    action = ACTIONS[key]
    separator = ":" if language == "zh-CN" else ": "
    return f"{action.title(language)}{separator}{action.detail(language)}"


#: Follow-up outcome keys staff choose (the workbooks' drop-down order) with their
#: (zh-CN, en) labels; the workbooks and the reports' call lists show them.
OUTCOME_LABELS: dict[str, tuple[str, str]] = {
    "reached": ("已联系上", "Reached"),
    "interested": ("有意向", "Interested"),
    "ordered": ("已下单", "Ordered"),
    "call_back": ("约定回电", "Call back"),
    "no_answer": ("无人接听", "No answer"),
    "not_interested": ("无意向", "Not interested"),
    "complaint": ("投诉", "Complaint"),
    "wrong_contact": ("联系方式有误", "Wrong contact"),
}


def outcome_label(key: str, language: str) -> str:
    """The label of follow-up outcome ``key`` in ``language`` (KeyError if unknown)."""
    zh, en = OUTCOME_LABELS[key]
    return zh if language == "zh-CN" else en


def label(value: str, language: str) -> str:
    """The display name of a segment, lifecycle, tier, group or level; the key if unknown."""
    names = LABELS.get(value)
    if names is None:
        return value
    return names[0] if language == "zh-CN" else names[1]
