"""What the demo company is: its teams, its value sets and the generated data's shape.

The demo is a mid-sized Chinese trading company with eight sales teams of different
sizes. Everything here is plain data; the generator modules draw from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import pandas as pd

from crm_batch.schema import SOURCE_TABLES


@dataclass(frozen=True)
class DemoTeam:
    """A sales team: its English name, its sales reps (account owners) and its region.

    ``share`` is the team's expected share of the company's customers; ``city_zh`` and
    ``area_code`` make its customers' company names and landline numbers local.
    """

    name: str
    owners: tuple[str, ...]
    region: str
    share: float
    city_zh: str
    area_code: str


TEAMS: tuple[DemoTeam, ...] = (
    DemoTeam(
        "Shanghai",
        ("王芳", "李强", "张敏", "陈静", "刘洋", "赵磊"),
        "East China",
        0.22,
        "上海",
        "021",
    ),
    DemoTeam(
        "Beijing", ("杨帆", "黄丽", "周涛", "吴昊", "孙悦"), "North China", 0.18, "北京", "010"
    ),
    DemoTeam("Guangzhou", ("何伟", "林娜", "郭超", "罗婷"), "South China", 0.14, "广州", "020"),
    DemoTeam("Shenzhen", ("郑凯", "梁晨", "谢雨", "宋佳"), "South China", 0.13, "深圳", "0755"),
    DemoTeam("Hangzhou", ("唐宇", "许静怡", "韩冰"), "East China", 0.11, "杭州", "0571"),
    DemoTeam("Chengdu", ("冯博", "邓欣", "曹磊"), "Southwest China", 0.10, "成都", "028"),
    DemoTeam("Wuhan", ("彭勇", "曾丹", "肖鹏"), "Central China", 0.08, "武汉", "027"),
    # the small team: two reps, a few per cent of the customers
    DemoTeam("Xiamen", ("田甜", "Kevin Lin"), "Southeast China", 0.04, "厦门", "0592"),
)

#: Where leads come from, and the share of each source's leads that become customers.
LEAD_CONVERSION: dict[str, float] = {
    "website": 0.12,
    "exhibition": 0.18,
    "referral": 0.28,
    "wechat": 0.15,
    "cold_call": 0.11,
    "partner": 0.22,
}
LEAD_SOURCES: tuple[str, ...] = tuple(LEAD_CONVERSION)
#: A customer's acquisition channel: a lead source, or a sign-up without a lead (lead
#: sources first, so a source has the same index in both tuples).
ACQUISITION_CHANNELS: tuple[str, ...] = (*LEAD_SOURCES, "walk_in", "online_shop")
ORDER_CHANNELS: tuple[str, ...] = ("online", "store", "phone", "wechat", "distributor")
CATEGORIES: tuple[str, ...] = (
    "Electronics",
    "Home & Kitchen",
    "Office Supplies",
    "Apparel",
    "Food & Beverage",
    "Beauty & Health",
    "Industrial",
    "Services",
)

#: Prefix and minimum digits of each key when the demo is loaded with text ids.
TEXT_ID_FORMAT: dict[str, tuple[str, int]] = {
    "customer_id": ("C", 7),
    "referred_by": ("C", 7),
    "lead_id": ("L", 8),
    "order_id": ("O", 9),
    "ticket_id": ("T", 8),
    "campaign_id": ("M", 5),
    "touch_id": ("X", 9),
}


def text_id_format(name: str, largest: int | None) -> tuple[str, int]:
    """Prefix and digits of key column ``name`` as text when its largest id is
    ``largest``: :data:`TEXT_ID_FORMAT`'s width, or every digit of the largest id."""
    prefix, width = TEXT_ID_FORMAT[name]
    return prefix, width if largest is None else max(width, len(str(largest)))


@dataclass(frozen=True)
class DemoData:
    """The six source tables of one demo company, as canonical frames.

    Columns are exactly the canonical schema's, in schema order; keys are integers
    (``load_demo`` turns them into text ids when asked). Dates and timestamps are
    ``datetime64[ns]``, money is float in CNY, low-cardinality text is categorical.
    """

    customers: pd.DataFrame
    leads: pd.DataFrame
    orders: pd.DataFrame
    tickets: pd.DataFrame
    campaigns: pd.DataFrame
    touches: pd.DataFrame
    seed: int
    end_date: date
    years: int
    #: The true campaign effect, for checks only (not loaded): ``order_id`` and the
    #: ``touch_id`` of the sent touch that caused the order (it would not exist without).
    caused_orders: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame({"order_id": [], "touch_id": []})
    )

    def tables(self) -> dict[str, pd.DataFrame]:
        """Table name -> frame, in the schema's order of source tables."""
        return {name: getattr(self, name) for name in SOURCE_TABLES}

    def row_counts(self) -> dict[str, int]:
        """Table name -> number of rows."""
        return {name: len(frame) for name, frame in self.tables().items()}
