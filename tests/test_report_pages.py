"""Issue 14 details of the report pages that need no database: the charts' one-drawing
crop and the cover's generation time with its timezone."""

from __future__ import annotations

from datetime import datetime

from crm_batch.i18n import numbers as fmt


def test_generation_time_names_its_timezone() -> None:
    """Issue 14: a reader in another office knows which clock the time is on."""
    from datetime import timedelta, timezone
    from zoneinfo import ZoneInfo

    shanghai = datetime(2026, 7, 1, 6, 5, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert fmt.moment(shanghai, "zh-CN") == "2026年7月1日 06:05 (Asia/Shanghai, UTC+08:00)"
    assert fmt.moment(shanghai, "en") == "1 Jul 2026 06:05 (Asia/Shanghai, UTC+08:00)"
    half_hour_west = datetime(2026, 7, 1, 6, 5, tzinfo=timezone(timedelta(hours=-3, minutes=-30)))
    assert fmt.moment(half_hour_west, "en") == "1 Jul 2026 06:05 (UTC-03:30)"
    assert fmt.moment(datetime(2026, 7, 1, 6, 5), "en") == "1 Jul 2026 06:05"


def test_a_cropped_chart_is_the_size_of_matplotlibs_tight_box() -> None:
    """The one-drawing crop keeps what lies outside the figure (axis labels below a
    short figure) and equals matplotlib's own bbox_inches="tight" within a pixel."""
    import base64
    import io

    import matplotlib.pyplot as plt
    from PIL import Image

    from crm_batch.reports import charts

    def size_of(uri: str) -> tuple[int, int]:
        with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as image:
            assert image.mode == "RGB"  # opaque: one image in the PDF, no mask
            return image.size

    def draw(axes_label: str) -> plt.Figure:
        figure, axes = plt.subplots(figsize=(6.2, 1.2))
        axes.barh([0, 1], [3, 5])
        axes.set_xlabel(axes_label)
        return figure

    reference = io.BytesIO()
    with charts._drawing():
        draw("客户数 customers").savefig(
            reference, format="png", dpi=charts.DPI, bbox_inches="tight", facecolor="white"
        )
        ours = size_of(charts._data_uri(draw("客户数 customers")))
    plt.close("all")
    with Image.open(reference) as image:
        expected = image.size
    assert abs(ours[0] - expected[0]) <= 1, (ours, expected)
    assert abs(ours[1] - expected[1]) <= 1, (ours, expected)
    assert ours[1] > 1.2 * charts.DPI  # the label below the 1.2 in figure is kept


def test_no_kpi_definition_shows_a_code_name() -> None:
    """Issue 14: `revenue_12m` in a reader-facing definition; the reports and workbooks
    print these sentences as they are."""
    import re

    from crm_batch.kpi.definitions import registry

    code = re.compile(r"\b[a-z]+_[a-z0-9_]+\b")
    found = {
        (name, language): code.findall(kpi.definition(language))
        for name, kpi in registry().items()
        for language in ("zh-CN", "en")
    }
    assert {key: names for key, names in found.items() if names} == {}


def test_money_zero_has_no_cents_small_amounts_keep_them() -> None:
    """Issue 14: "CNY 0.00" next to "CNY 18,044" in one column."""
    assert fmt.money(0.0, "en", "CNY") == "CNY 0"
    assert fmt.money(-0.0, "zh-CN", "CNY") == "¥0"
    assert fmt.money(18044.4, "en", "CNY") == "CNY 18,044"
    assert fmt.money(77.19, "zh-CN", "CNY") == "¥77.19"
    assert fmt.money(0.004, "en", "CNY") == "CNY 0.00"  # not zero: it says so
