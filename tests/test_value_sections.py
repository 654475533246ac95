"""The value-model and control-group report sections as display rows."""

from __future__ import annotations

import pandas as pd

from crm_batch.kpi.calibration import CALIBRATION_COLUMNS
from crm_batch.kpi.playbook import label
from crm_batch.kpi.uplift import UPLIFT_COLUMNS
from crm_batch.reports.value_sections import calibration_rows, uplift_rows

NAN = float("nan")


def test_uplift_rows_show_intervals_or_say_attributed_only() -> None:
    measured = dict.fromkeys(UPLIFT_COLUMNS, NAN) | {
        "sent": 900.0,
        "control": 100.0,
        "conversion_sent": 0.12,
        "conversion_control": 0.10,
        "uplift": 0.02,
        "uplift_low": -0.004,
        "uplift_high": 0.046,
        "incremental_revenue": 5000.0,
        "incremental_revenue_low": -1000.0,
        "incremental_revenue_high": 11000.0,
        "cost": 500.0,
        "incremental_roi": 9.0,
    }
    personal = dict.fromkeys(UPLIFT_COLUMNS, NAN) | {
        "sent": 40.0,
        "control": 0.0,
        "conversion_sent": 0.2,
        "cost": 240.0,
    }
    frame = pd.DataFrame([{"channel": "sms", **measured}, {"channel": "call", **personal}])
    sms, call = uplift_rows(frame, "en", "CNY")
    assert sms["uplift"] == "+2.0 (-0.4 … +4.6)"
    assert "CNY 5,000" in sms["incremental_revenue"]
    assert "11,000" in sms["incremental_revenue"]
    assert sms["incremental_roi"] == "900%"
    assert call["uplift"] == "attributed, not incremental"
    assert call["conversion_control"] == "–"
    assert call["incremental_revenue"] == "–"
    zh_call = uplift_rows(frame, "zh-CN", "CNY")[1]
    assert zh_call["uplift"] == "仅归因,非增量"
    small = frame.assign(control=[5.0, 0.0], uplift=NAN)
    assert uplift_rows(small, "en", "CNY")[0]["uplift"] == "control under 30: too small to tell"


def test_calibration_rows_name_the_total() -> None:
    frame = pd.DataFrame(
        [("diamond", 10, 20.4, 19.0, 19.0 / 20.4), ("all", 30, 40.0, 41.0, 41.0 / 40.0)],
        columns=list(CALIBRATION_COLUMNS),
    )
    diamond, total = calibration_rows(frame, "en")
    assert diamond["tier"] == label("diamond", "en")  # the tier's label, not its key
    assert total["tier"] == "All"
    assert total["total"] is True
    assert total["ratio"] == "1.02"
    assert diamond["predicted_days"] == "20"
