"""Targets: actual vs. baseline, target and attainment per KPI (the quarterly review).

Settings (``[targets.<kpi>]``, :class:`crm_batch.config.TargetSettings`) give each KPI one
rule; the seeds' defaults are conversion +40 %, repurchase +35 %, satisfaction +50 %,
marketing ROI +50 % and opt-out rate <= 3 %.

Rules (details chosen here):

* **change** *c* is an improvement against the baseline: for a KPI where up is good
  (or neutral) target = baseline + *c* x |baseline|, where down is good target =
  baseline - *c* x |baseline|. For a positive baseline that is baseline x (1 + *c*)
  (+40 % -> x 1.4) or x (1 - *c*); taking |baseline| keeps "+50 %" an improvement when
  the baseline is negative (an ROI of -0.2 gets a target of -0.1, not -0.3). A target
  beyond the KPI's scale is capped at it: shares at 1 (100 %), ``satisfaction_mean`` at 5;
* **max** / **min**: the bound is the target; down is good for ``max``, up for ``min``;
* a KPI has exactly one rule; anything else is a :class:`ConfigError`, as is a target
  for a name that is not in the registry.

The **baseline** is the KPI in the baseline period (default: the same period a year
earlier), computed at the same distance from that period's end as the actual is from
its own (:func:`baseline_as_of`), so maturing KPIs (90-day windows) compare like with
like.

**Attainment** = actual / target where up is good, target / actual where down is good.
It is NaN when the ratio is undefined or misleading: a zero denominator (e.g. an opt-out
rate of exactly 0 %, which meets its bound), a negative actual or target (ROI below
zero), or a missing actual or baseline. ``met`` (True/False, NA when unknown) always
says whether the target was reached: actual >= target (up) or actual <= target (down).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import numpy as np
import pandas as pd

from crm_batch.config import TargetSettings
from crm_batch.errors import ConfigError
from crm_batch.kpi.definitions import KpiDefinition
from crm_batch.periods import Period, parse_period

#: Scale limits of KPIs that are not plain shares (shares are limited to [0, 1]).
SCALE_LIMITS: dict[str, tuple[float, float]] = {"satisfaction_mean": (1.0, 5.0)}
#: Ratio KPIs that are not shares of a whole and have no upper limit.
UNBOUNDED_RATIOS = frozenset({"campaign_roi"})

#: Columns of :func:`target_table`, in order.
TARGET_COLUMNS = (
    "kpi",
    "label_zh",
    "label_en",
    "unit",
    "direction",
    "rule",
    "change",
    "baseline",
    "target",
    "actual",
    "attainment",
    "met",
)


def baseline_period(period: Period, setting: TargetSettings) -> Period:
    """The setting's ``baseline_period`` (e.g. ``2025Q3``), else the period a year earlier."""
    if setting.baseline_period:
        try:
            return parse_period(setting.baseline_period)
        except ValueError as exc:
            raise ConfigError(f"targets: baseline_period: {exc}") from None
    return period.year_before()


def baseline_as_of(period: Period, as_of: date, baseline: Period) -> date:
    """The business date at which the baseline is computed: the same lag as ``as_of``.

    After the period's end, as many days after the baseline's end as ``as_of`` is after
    the period's end; inside the period, as many days after the baseline's start (a
    period-to-date comparison), at most the baseline's end. Never later than ``as_of``.
    """
    if as_of >= period.end:
        result = baseline.end + (as_of - period.end)
    else:
        result = min(baseline.start + (as_of - period.start), baseline.end)
    return min(result, as_of)


def _limits(kpi: KpiDefinition) -> tuple[float | None, float | None]:
    if kpi.name in SCALE_LIMITS:
        return SCALE_LIMITS[kpi.name]
    if kpi.unit == "ratio" and kpi.name not in UNBOUNDED_RATIOS:
        return 0.0, 1.0
    return None, None


def _rule(name: str, setting: TargetSettings) -> str:
    given = [
        rule
        for rule, value in (("change", setting.change), ("max", setting.max), ("min", setting.min))
        if value is not None
    ]
    if len(given) != 1:
        found = ", ".join(given) if given else "none"
        raise ConfigError(f"targets.{name}: set exactly one of change, max or min (found: {found})")
    return given[0]


def uncapped_target(direction: str, change: float, baseline: float) -> float:
    """A relative target before the KPI's scale limits: ``baseline`` moved by ``change``
    of its size in the good ``direction``. :func:`target_value` caps it; a report says
    a target is capped when the two differ."""
    step = change * abs(baseline)
    return baseline - step if direction == "down" else baseline + step


def target_value(
    kpi: KpiDefinition, setting: TargetSettings, baseline: float
) -> tuple[str, str, float]:
    """(rule, direction that is good, target) for one KPI (see the module)."""
    rule = _rule(kpi.name, setting)
    if rule == "max":
        return rule, "down", float(setting.max)  # type: ignore[arg-type]
    if rule == "min":
        return rule, "up", float(setting.min)  # type: ignore[arg-type]
    direction = "down" if kpi.direction == "down" else "up"
    target = uncapped_target(direction, float(setting.change), baseline)  # type: ignore[arg-type]
    low, high = _limits(kpi)
    if not np.isnan(target):
        if high is not None:
            target = min(target, high)
        if low is not None:
            target = max(target, low)
    return rule, direction, target


def attainment(actual: float, target: float, direction: str) -> float:
    """actual / target (up) or target / actual (down); NaN when undefined (see module)."""
    if np.isnan(actual) or np.isnan(target) or actual < 0 or target < 0:
        return float("nan")
    numerator, denominator = (actual, target) if direction == "up" else (target, actual)
    return numerator / denominator if denominator > 0 else float("nan")


def target_table(
    actuals: Mapping[str, float],
    baselines: Mapping[str, float],
    targets: Mapping[str, TargetSettings],
    registry: Mapping[str, KpiDefinition],
) -> pd.DataFrame:
    """One row per targeted KPI: actual, baseline, target, attainment and ``met``.

    ``actuals`` and ``baselines`` map KPI names to values (missing = NaN); ``targets``
    are the settings; ``registry`` is :func:`crm_batch.kpi.definitions.registry`.
    """
    rows = []
    for name, setting in targets.items():
        kpi = registry.get(name)
        if kpi is None:
            raise ConfigError(
                f"targets.{name}: no KPI of that name (known: {', '.join(sorted(registry))})"
            )
        actual = float(actuals.get(name, np.nan))
        baseline = float(baselines.get(name, np.nan))
        rule, direction, target = target_value(kpi, setting, baseline)
        unknown = np.isnan(actual) or np.isnan(target)
        met = pd.NA if unknown else (actual >= target if direction == "up" else actual <= target)
        rows.append(
            {
                "kpi": name,
                "label_zh": kpi.label_zh,
                "label_en": kpi.label_en,
                "unit": kpi.unit,
                "direction": direction,
                "rule": rule,
                "change": np.nan if setting.change is None else float(setting.change),
                "baseline": baseline,
                "target": target,
                "actual": actual,
                "attainment": attainment(actual, target, direction),
                "met": met,
            }
        )
    table = pd.DataFrame(rows, columns=list(TARGET_COLUMNS))
    return table.astype({"met": "boolean"})


def baseline_periods(period: Period, targets: Mapping[str, TargetSettings]) -> dict[str, Period]:
    """The baseline period of each targeted KPI."""
    return {name: baseline_period(period, setting) for name, setting in targets.items()}
