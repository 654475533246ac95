"""Customer identities: names, phone numbers, e-mail addresses and birthdays.

Most customers are Chinese persons (a surname and a one- or two-character given name,
drawn from frequency-ordered lists, with a pinyin e-mail), some are Chinese companies
(``上海恒通贸易有限公司``), Latin-script companies or foreign persons. A fixed list of
hostile names is planted on purpose so every output layer is tested by the demo itself.
Strings are built with numpy's vectorised string functions, one call per part.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Customer kinds (index into this tuple).
PERSON_CN, COMPANY_CN, COMPANY_LATIN, PERSON_LATIN = range(4)
KIND_SHARES = (0.80, 0.10, 0.05, 0.05)

#: Surnames in order of frequency, with pinyin.
_SURNAMES: tuple[tuple[str, str], ...] = (
    ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"),
    ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"), ("徐", "xu"), ("孙", "sun"),
    ("马", "ma"), ("朱", "zhu"), ("胡", "hu"), ("郭", "guo"), ("何", "he"), ("高", "gao"),
    ("林", "lin"), ("罗", "luo"), ("郑", "zheng"), ("梁", "liang"), ("谢", "xie"), ("宋", "song"),
    ("唐", "tang"), ("许", "xu"), ("韩", "han"), ("冯", "feng"), ("邓", "deng"), ("曹", "cao"),
    ("彭", "peng"), ("曾", "zeng"), ("肖", "xiao"), ("田", "tian"), ("董", "dong"), ("袁", "yuan"),
    ("潘", "pan"), ("于", "yu"), ("蒋", "jiang"), ("蔡", "cai"), ("余", "yu"), ("杜", "du"),
    ("叶", "ye"), ("程", "cheng"), ("苏", "su"), ("魏", "wei"), ("吕", "lv"), ("丁", "ding"),
    ("任", "ren"), ("沈", "shen"), ("姚", "yao"), ("卢", "lu"), ("姜", "jiang"), ("崔", "cui"),
    ("钟", "zhong"), ("谭", "tan"), ("陆", "lu"), ("汪", "wang"), ("范", "fan"), ("金", "jin"),
    ("石", "shi"), ("廖", "liao"), ("贾", "jia"), ("夏", "xia"), ("韦", "wei"), ("付", "fu"),
    ("方", "fang"), ("白", "bai"), ("邹", "zou"), ("孟", "meng"), ("熊", "xiong"), ("秦", "qin"),
    ("邱", "qiu"), ("江", "jiang"), ("尹", "yin"), ("薛", "xue"), ("闫", "yan"), ("段", "duan"),
    ("雷", "lei"), ("侯", "hou"), ("龙", "long"), ("史", "shi"), ("陶", "tao"), ("黎", "li"),
    ("贺", "he"), ("顾", "gu"), ("毛", "mao"), ("郝", "hao"), ("龚", "gong"), ("邵", "shao"),
    ("万", "wan"), ("钱", "qian"), ("严", "yan"), ("武", "wu"), ("戴", "dai"), ("莫", "mo"),
    ("孔", "kong"), ("向", "xiang"), ("汤", "tang"), ("欧阳", "ouyang"), ("司马", "sima"),
    ("上官", "shangguan"), ("诸葛", "zhuge"),
)  # fmt: skip
#: Characters common in given names, with pinyin.
_GIVEN: tuple[tuple[str, str], ...] = (
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"),
    ("强", "qiang"), ("磊", "lei"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"), ("艳", "yan"),
    ("杰", "jie"), ("娟", "juan"), ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("霞", "xia"),
    ("平", "ping"), ("刚", "gang"), ("辉", "hui"), ("玲", "ling"), ("华", "hua"), ("红", "hong"),
    ("鹏", "peng"), ("飞", "fei"), ("鑫", "xin"), ("波", "bo"), ("斌", "bin"), ("宇", "yu"),
    ("浩", "hao"), ("凯", "kai"), ("晨", "chen"), ("婷", "ting"), ("雪", "xue"), ("琳", "lin"),
    ("欣", "xin"), ("怡", "yi"), ("佳", "jia"), ("子", "zi"), ("轩", "xuan"), ("梓", "zi"),
    ("涵", "han"), ("萱", "xuan"), ("思", "si"), ("雨", "yu"), ("嘉", "jia"), ("文", "wen"),
    ("建", "jian"), ("国", "guo"), ("志", "zhi"), ("海", "hai"), ("丹", "dan"), ("秀", "xiu"),
    ("英", "ying"), ("兰", "lan"), ("春", "chun"), ("博", "bo"), ("俊", "jun"), ("彤", "tong"),
    ("瑶", "yao"), ("琪", "qi"), ("晓", "xiao"), ("昊", "hao"), ("然", "ran"), ("睿", "rui"),
    ("一", "yi"), ("诗", "shi"), ("慧", "hui"), ("颖", "ying"),
)  # fmt: skip
#: Company brand names, with pinyin for the mail domain.
_BRANDS: tuple[tuple[str, str], ...] = (
    ("恒通", "hengtong"), ("华信", "huaxin"), ("鑫源", "xinyuan"), ("盛达", "shengda"),
    ("宏图", "hongtu"), ("金桥", "jinqiao"), ("中联", "zhonglian"), ("天成", "tiancheng"),
    ("博远", "boyuan"), ("嘉禾", "jiahe"), ("永安", "yongan"), ("瑞丰", "ruifeng"),
    ("东方", "dongfang"), ("新锐", "xinrui"), ("汇达", "huida"), ("联创", "lianchuang"),
    ("远景", "yuanjing"), ("百川", "baichuan"),
)  # fmt: skip
_INDUSTRIES_CN = (
    "贸易", "科技", "电子", "实业", "餐饮管理", "物流", "建材", "医疗器械", "文化传媒", "进出口",
)  # fmt: skip
_LATIN_PREFIX = (
    "Golden Bridge", "Pacific Rim", "Blue Harbor", "Northstar", "Evergreen", "Silver Lake",
    "Red Maple", "Summit", "Orient Star", "Sino-Euro", "Jade River", "Lotus",
)  # fmt: skip
_LATIN_INDUSTRY = (
    "Trading", "Electronics", "Logistics", "Foods", "Industrial", "Medical", "Textiles",
    "Consulting",
)  # fmt: skip
_LATIN_SUFFIX = ("Co., Ltd.", "Ltd.", "GmbH", "Inc.", "Pte. Ltd.", "LLC", "S.A.R.L.", "B.V.")
#: Foreign first and last names, each with an ASCII spelling for e-mail addresses.
_FIRST: tuple[tuple[str, str], ...] = (
    ("Anna", "anna"), ("John", "john"), ("María", "maria"), ("David", "david"),
    ("Sophie", "sophie"), ("Lukas", "lukas"), ("Yuki", "yuki"), ("Hiroshi", "hiroshi"),
    ("Min-jun", "minjun"), ("Ji-woo", "jiwoo"), ("Olga", "olga"), ("Ivan", "ivan"),
    ("Fatima", "fatima"), ("Ahmed", "ahmed"), ("Carlos", "carlos"), ("Lucía", "lucia"),
    ("Emma", "emma"), ("Oliver", "oliver"), ("Chloé", "chloe"), ("François", "francois"),
    ("Søren", "soren"), ("Zoë", "zoe"), ("Priya", "priya"), ("Nguyen", "nguyen"),
)  # fmt: skip
_LAST: tuple[tuple[str, str], ...] = (
    ("Smith", "smith"), ("Müller", "mueller"), ("García", "garcia"), ("Tanaka", "tanaka"),
    ("Kim", "kim"), ("Ivanova", "ivanova"), ("Rossi", "rossi"), ("Dubois", "dubois"),
    ("Tran", "tran"), ("Kowalski", "kowalski"), ("O'Brien", "obrien"), ("Johansson", "johansson"),
    ("Silva", "silva"), ("Khan", "khan"), ("Schmidt", "schmidt"), ("Martin", "martin"),
    ("Nakamura", "nakamura"), ("Park", "park"),
)  # fmt: skip
_CN_MAIL = np.array(["qq.com", "163.com", "126.com", "sina.com", "outlook.com", "gmail.com"])
_CN_MAIL_P = np.array([0.35, 0.25, 0.1, 0.08, 0.12, 0.1])
_LATIN_MAIL = np.array(["gmail.com", "outlook.com", "yahoo.com", "web.de", "icloud.com"])
_COUNTRY_CODES = np.array(["1", "44", "49", "33", "81", "82", "65", "61", "7", "34"])

#: Names that must not break a CSV, a spreadsheet, an HTML page, a PDF, a log or a SQL
#: statement. Planted on fixed customers so every output layer meets them.
HOSTILE_NAMES: tuple[str, ...] = (
    "=cmd|' /C calc'!A0",
    "<script>alert(1)</script>",
    "王\n小明",
    ("Very Long Name " * 2667)[:40_000],
    "",
    "Robert'); DROP TABLE customers;--",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "+86-21-5555-0000",
    "NULL",
    'Quote "Comma", Inc.',
    "C:\\Users\\Public\\share",
    "Tab\tSeparated",
    "\u202egnp.exe",
    "👩‍💼 Emoji Trading 有限公司",
    "\x1b[31mANSI red\x1b[0m",
    "  leading and trailing spaces  ",
)


def _columns(pairs: tuple[tuple[str, str], ...]) -> tuple[np.ndarray, np.ndarray]:
    """(text, ascii) pairs -> a text array and an ascii array."""
    return np.array([text for text, _ in pairs]), np.array([ascii_ for _, ascii_ in pairs])


_SUR_ZH, _SUR_PY = _columns(_SURNAMES)
_GIV_ZH, _GIV_PY = _columns(_GIVEN)
_BRAND_ZH, _BRAND_PY = _columns(_BRANDS)
_FIRST_TXT, _FIRST_ASCII = _columns(_FIRST)
_LAST_TXT, _LAST_ASCII = _columns(_LAST)
#: Zipf-like surname frequencies (the list is in frequency order).
_SUR_P = 1.0 / np.arange(1, len(_SUR_ZH) + 1) ** 0.9
_SUR_P /= _SUR_P.sum()

_cat = np.strings.add


def _digits(rng: np.random.Generator, size: int, width: int) -> np.ndarray:
    """Random zero-padded digit strings of ``width`` characters."""
    if size == 0:  # numpy's zfill cannot take an empty array
        return np.zeros(0, dtype=f"U{width}")
    return np.strings.zfill(rng.integers(0, 10**width, size=size).astype(f"U{width}"), width)


def chinese_persons(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Names like 张伟 / 欧阳思涵 and a matching e-mail local part (``siwei.zhang``)."""
    sur = rng.choice(len(_SUR_ZH), size=n, p=_SUR_P)
    g1 = rng.integers(0, len(_GIV_ZH), size=n)
    g2 = rng.integers(0, len(_GIV_ZH), size=n)
    two = rng.random(n) < 0.65
    given_zh = np.where(two, _cat(_GIV_ZH[g1], _GIV_ZH[g2]), _GIV_ZH[g1])
    given_py = np.where(two, _cat(_GIV_PY[g1], _GIV_PY[g2]), _GIV_PY[g1])
    names = _cat(_SUR_ZH[sur], given_zh)
    style = rng.integers(0, 3, size=n)
    local = np.where(
        style == 0,
        _cat(_cat(given_py, "."), _SUR_PY[sur]),
        np.where(style == 1, _cat(_SUR_PY[sur], given_py), _cat(_SUR_PY[sur], _digits(rng, n, 4))),
    )
    return names, local


def chinese_companies(
    rng: np.random.Generator, city_zh: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Names like 上海恒通贸易有限公司 and a company mail domain (``hengtong.com.cn``)."""
    n = len(city_zh)
    brand = rng.integers(0, len(_BRAND_ZH), size=n)
    industry = np.array(_INDUSTRIES_CN)[rng.integers(0, len(_INDUSTRIES_CN), size=n)]
    names = _cat(_cat(_cat(city_zh, _BRAND_ZH[brand]), industry), "有限公司")
    tld = np.array([".com.cn", ".cn", ".com"])[rng.integers(0, 3, size=n)]
    return names, _cat(_cat(_BRAND_PY[brand], _digits(rng, n, 2)), tld)


def latin_companies(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Names like ``Blue Harbor Logistics Pte. Ltd.`` and a mail domain."""
    prefix = np.array(_LATIN_PREFIX)[rng.integers(0, len(_LATIN_PREFIX), size=n)]
    industry = np.array(_LATIN_INDUSTRY)[rng.integers(0, len(_LATIN_INDUSTRY), size=n)]
    suffix = np.array(_LATIN_SUFFIX)[rng.integers(0, len(_LATIN_SUFFIX), size=n)]
    names = _cat(_cat(_cat(_cat(prefix, " "), industry), " "), suffix)
    slug = np.strings.replace(np.strings.replace(np.strings.lower(prefix), " ", ""), "-", "")
    return names, _cat(_cat(slug, np.strings.lower(industry)), ".com")


def latin_persons(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Names like ``Søren Müller`` and an e-mail local part (``soren.mueller``)."""
    first = rng.integers(0, len(_FIRST_TXT), size=n)
    last = rng.integers(0, len(_LAST_TXT), size=n)
    names = _cat(_cat(_FIRST_TXT[first], " "), _LAST_TXT[last])
    return names, _cat(_cat(_FIRST_ASCII[first], "."), _LAST_ASCII[last])


def identities(
    rng: np.random.Generator, kind: np.ndarray, area_code: np.ndarray, city_zh: np.ndarray
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Name, phone and e-mail for each customer of the given kinds.

    ``area_code`` and ``city_zh`` are per customer (from the team). About 4 % of phones
    and 12 % of e-mails are unknown (NA); hostile names are planted afterwards.
    """
    n = len(kind)
    names = np.empty(n, dtype=object)
    emails = np.empty(n, dtype=object)
    for code in (PERSON_CN, COMPANY_CN, COMPANY_LATIN, PERSON_LATIN):
        rows = np.flatnonzero(kind == code)
        if len(rows) == 0:  # numpy's string functions cannot take empty arrays
            continue
        if code == PERSON_CN:
            name, local = chinese_persons(rng, len(rows))
            domain = rng.choice(_CN_MAIL, size=len(rows), p=_CN_MAIL_P)
            qq = (domain == "qq.com") & (rng.random(len(rows)) < 0.6)
            local = np.where(qq, rng.integers(10**5, 10**10, size=len(rows)).astype("U10"), local)
            mail = _cat(_cat(local, "@"), domain)
        elif code == COMPANY_CN:
            name, domain = chinese_companies(rng, city_zh[rows])
            box = np.array(["sales@", "info@", "purchase@"])[rng.integers(0, 3, size=len(rows))]
            mail = _cat(box, domain)
        elif code == COMPANY_LATIN:
            name, domain = latin_companies(rng, len(rows))
            mail = _cat("info@", domain)
        else:
            name, local = latin_persons(rng, len(rows))
            domain = _LATIN_MAIL[rng.integers(0, len(_LATIN_MAIL), size=len(rows))]
            mail = _cat(_cat(local, "@"), domain)
        names[rows] = name
        emails[rows] = mail
    phones = _phones(rng, kind, area_code)
    email_series = pd.Series(emails, dtype="str")
    email_series[rng.random(n) < 0.12] = None
    return pd.Series(names, dtype="str"), phones, email_series


def _phones(rng: np.random.Generator, kind: np.ndarray, area_code: np.ndarray) -> pd.Series:
    """Chinese mobiles (some written +86), company landlines, foreign numbers; 4 % NA."""
    n = len(kind)
    mobile = _cat(
        _cat("1", np.array(["3", "5", "7", "8", "9"])[rng.integers(0, 5, size=n)]),
        _digits(rng, n, 9),
    )
    mobile = np.where(rng.random(n) < 0.1, _cat("+86 ", mobile), mobile)
    landline = _cat(_cat(area_code, "-"), _digits(rng, n, 8))
    country = _COUNTRY_CODES[rng.integers(0, len(_COUNTRY_CODES), size=n)]
    foreign = _cat(
        _cat(_cat(_cat("+", country), " "), _digits(rng, n, 3)), _cat(" ", _digits(rng, n, 7))
    )
    phone = np.where(
        kind == COMPANY_CN, landline, np.where(kind == PERSON_CN, mobile, foreign)
    ).astype(object)
    series = pd.Series(phone, dtype="str")
    series[rng.random(n) < 0.04] = None
    return series


def birthdays(rng: np.random.Generator, kind: np.ndarray, end: np.datetime64) -> np.ndarray:
    """Persons' dates of birth (aged 18..80 at ``end``); NaT for companies and ~20 % unknown."""
    n = len(kind)
    age_days = (np.clip(rng.normal(38, 11, size=n), 18.01, 80) * 365.25).astype(np.int64)
    born = (np.datetime64(end, "D") - age_days.astype("timedelta64[D]")).astype("datetime64[ns]")
    person = (kind == PERSON_CN) | (kind == PERSON_LATIN)
    return np.where(person & (rng.random(n) >= 0.2), born, np.datetime64("NaT", "ns"))


def hostile_positions(n: int) -> np.ndarray:
    """Fixed, spread-out row positions for :data:`HOSTILE_NAMES` among ``n`` customers."""
    count = min(len(HOSTILE_NAMES), n)
    return np.unique(np.linspace(n // (2 * count + 1), n - 1, num=count).astype(np.int64))


def plant_hostile_names(names: pd.Series) -> pd.Series:
    """``names`` with the hostile names at :func:`hostile_positions` (same for any seed)."""
    positions = hostile_positions(len(names))
    names = names.copy()
    names.iloc[positions] = list(HOSTILE_NAMES[: len(positions)])
    return names
