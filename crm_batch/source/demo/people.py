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
_SURNAMES = (
    "王wang 李li 张zhang 刘liu 陈chen 杨yang 黄huang 赵zhao 吴wu 周zhou 徐xu 孙sun 马ma 朱zhu "
    "胡hu 郭guo 何he 高gao 林lin 罗luo 郑zheng 梁liang 谢xie 宋song 唐tang 许xu 韩han 冯feng "
    "邓deng 曹cao 彭peng 曾zeng 肖xiao 田tian 董dong 袁yuan 潘pan 于yu 蒋jiang 蔡cai 余yu 杜du "
    "叶ye 程cheng 苏su 魏wei 吕lv 丁ding 任ren 沈shen 姚yao 卢lu 姜jiang 崔cui 钟zhong 谭tan "
    "陆lu 汪wang 范fan 金jin 石shi 廖liao 贾jia 夏xia 韦wei 付fu 方fang 白bai 邹zou 孟meng "
    "熊xiong 秦qin 邱qiu 江jiang 尹yin 薛xue 闫yan 段duan 雷lei 侯hou 龙long 史shi 陶tao 黎li "
    "贺he 顾gu 毛mao 郝hao 龚gong 邵shao 万wan 钱qian 严yan 武wu 戴dai 莫mo 孔kong 向xiang "
    "汤tang 欧阳ouyang 司马sima 上官shangguan 诸葛zhuge"
).split()
#: Characters common in given names, with pinyin.
_GIVEN = (
    "伟wei 芳fang 娜na 敏min 静jing 丽li 强qiang 磊lei 军jun 洋yang 勇yong 艳yan 杰jie 娟juan "
    "涛tao 明ming 超chao 霞xia 平ping 刚gang 辉hui 玲ling 华hua 红hong 鹏peng 飞fei 鑫xin 波bo "
    "斌bin 宇yu 浩hao 凯kai 晨chen 婷ting 雪xue 琳lin 欣xin 怡yi 佳jia 子zi 轩xuan 梓zi 涵han "
    "萱xuan 思si 雨yu 嘉jia 文wen 建jian 国guo 志zhi 海hai 丹dan 秀xiu 英ying 兰lan 春chun "
    "博bo 俊jun 彤tong 瑶yao 琪qi 晓xiao 昊hao 然ran 睿rui 一yi 诗shi 慧hui 颖ying"
).split()
_BRANDS = (
    "恒通hengtong 华信huaxin 鑫源xinyuan 盛达shengda 宏图hongtu 金桥jinqiao 中联zhonglian "
    "天成tiancheng 博远boyuan 嘉禾jiahe 永安yongan 瑞丰ruifeng 东方dongfang 新锐xinrui "
    "汇达huida 联创lianchuang 远景yuanjing 百川baichuan"
).split()
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
_FIRST = (
    "Anna:anna John:john María:maria David:david Sophie:sophie Lukas:lukas Yuki:yuki "
    "Hiroshi:hiroshi Min-jun:minjun Ji-woo:jiwoo Olga:olga Ivan:ivan Fatima:fatima "
    "Ahmed:ahmed Carlos:carlos Lucía:lucia Emma:emma Oliver:oliver Chloé:chloe "
    "François:francois Søren:soren Zoë:zoe Priya:priya Nguyen:nguyen"
).split()
_LAST = (
    "Smith:smith Müller:mueller García:garcia Tanaka:tanaka Kim:kim Ivanova:ivanova "
    "Rossi:rossi Dubois:dubois Tran:tran Kowalski:kowalski O'Brien:obrien Johansson:johansson "
    "Silva:silva Khan:khan Schmidt:schmidt Martin:martin Nakamura:nakamura Park:park"
).split()
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


def _split(entries: tuple[str, ...] | list[str], sep: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Entries like ``王wang`` (or ``Zoë:zoe`` with ``sep``) -> (text, ascii) arrays."""
    if sep:
        pairs = [entry.split(sep) for entry in entries]
    else:
        pairs = [(_hanzi(entry), entry[len(_hanzi(entry)) :]) for entry in entries]
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def _hanzi(entry: str) -> str:
    """The leading Chinese characters of ``entry``."""
    end = 0
    while end < len(entry) and not entry[end].isascii():
        end += 1
    return entry[:end]


_SUR_ZH, _SUR_PY = _split(_SURNAMES)
_GIV_ZH, _GIV_PY = _split(_GIVEN)
_BRAND_ZH, _BRAND_PY = _split(_BRANDS)
_FIRST_TXT, _FIRST_ASCII = _split(_FIRST, ":")
_LAST_TXT, _LAST_ASCII = _split(_LAST, ":")
#: Zipf-like surname frequencies (the list is in frequency order).
_SUR_P = 1.0 / np.arange(1, len(_SUR_ZH) + 1) ** 0.9
_SUR_P /= _SUR_P.sum()

cat = np.strings.add


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
    given_zh = np.where(two, cat(_GIV_ZH[g1], _GIV_ZH[g2]), _GIV_ZH[g1])
    given_py = np.where(two, cat(_GIV_PY[g1], _GIV_PY[g2]), _GIV_PY[g1])
    names = cat(_SUR_ZH[sur], given_zh)
    style = rng.integers(0, 3, size=n)
    local = np.where(
        style == 0,
        cat(cat(given_py, "."), _SUR_PY[sur]),
        np.where(style == 1, cat(_SUR_PY[sur], given_py), cat(_SUR_PY[sur], _digits(rng, n, 4))),
    )
    return names, local


def chinese_companies(
    rng: np.random.Generator, city_zh: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Names like 上海恒通贸易有限公司 and a company mail domain (``hengtong.com.cn``)."""
    n = len(city_zh)
    brand = rng.integers(0, len(_BRAND_ZH), size=n)
    industry = np.array(_INDUSTRIES_CN)[rng.integers(0, len(_INDUSTRIES_CN), size=n)]
    names = cat(cat(cat(city_zh, _BRAND_ZH[brand]), industry), "有限公司")
    tld = np.array([".com.cn", ".cn", ".com"])[rng.integers(0, 3, size=n)]
    return names, cat(cat(_BRAND_PY[brand], _digits(rng, n, 2)), tld)


def latin_companies(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Names like ``Blue Harbor Logistics Pte. Ltd.`` and a mail domain."""
    prefix = np.array(_LATIN_PREFIX)[rng.integers(0, len(_LATIN_PREFIX), size=n)]
    industry = np.array(_LATIN_INDUSTRY)[rng.integers(0, len(_LATIN_INDUSTRY), size=n)]
    suffix = np.array(_LATIN_SUFFIX)[rng.integers(0, len(_LATIN_SUFFIX), size=n)]
    names = cat(cat(cat(cat(prefix, " "), industry), " "), suffix)
    slug = np.strings.replace(np.strings.replace(np.strings.lower(prefix), " ", ""), "-", "")
    return names, cat(cat(slug, np.strings.lower(industry)), ".com")


def latin_persons(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Names like ``Søren Müller`` and an e-mail local part (``soren.mueller``)."""
    first = rng.integers(0, len(_FIRST_TXT), size=n)
    last = rng.integers(0, len(_LAST_TXT), size=n)
    names = cat(cat(_FIRST_TXT[first], " "), _LAST_TXT[last])
    return names, cat(cat(_FIRST_ASCII[first], "."), _LAST_ASCII[last])


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
            mail = cat(cat(local, "@"), domain)
        elif code == COMPANY_CN:
            name, domain = chinese_companies(rng, city_zh[rows])
            box = np.array(["sales@", "info@", "purchase@"])[rng.integers(0, 3, size=len(rows))]
            mail = cat(box, domain)
        elif code == COMPANY_LATIN:
            name, domain = latin_companies(rng, len(rows))
            mail = cat("info@", domain)
        else:
            name, local = latin_persons(rng, len(rows))
            domain = _LATIN_MAIL[rng.integers(0, len(_LATIN_MAIL), size=len(rows))]
            mail = cat(cat(local, "@"), domain)
        names[rows] = name
        emails[rows] = mail
    phones = _phones(rng, kind, area_code)
    email_series = pd.Series(emails, dtype="str")
    email_series[rng.random(n) < 0.12] = None
    return pd.Series(names, dtype="str"), phones, email_series


def _phones(rng: np.random.Generator, kind: np.ndarray, area_code: np.ndarray) -> pd.Series:
    """Chinese mobiles (some written +86), company landlines, foreign numbers; 4 % NA."""
    n = len(kind)
    mobile = cat(
        cat("1", np.array(["3", "5", "7", "8", "9"])[rng.integers(0, 5, size=n)]),
        _digits(rng, n, 9),
    )
    mobile = np.where(rng.random(n) < 0.1, cat("+86 ", mobile), mobile)
    landline = cat(cat(area_code, "-"), _digits(rng, n, 8))
    country = _COUNTRY_CODES[rng.integers(0, len(_COUNTRY_CODES), size=n)]
    foreign = cat(cat(cat(cat("+", country), " "), _digits(rng, n, 3)), cat(" ", _digits(rng, n, 7)))
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
