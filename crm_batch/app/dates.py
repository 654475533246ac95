"""Business dates: which day a run closes when nobody names one.

The nightly run closes the previous day in the configured timezone; every entry point
(CLI, scheduler, buttons) that needs a default business date asks here.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from crm_batch.config import Settings


def today(settings: Settings) -> date:
    """Today in the configured timezone."""
    return datetime.now(settings.tz).date()


def default_business_date(settings: Settings) -> date:
    """Yesterday in the configured timezone: the nightly run closes the previous day."""
    return today(settings) - timedelta(days=1)
