"""E-mail delivery of the rendered PDF reports (recipients only from the settings).

Public API: :func:`deliver` (plan, skip what was sent, send, report),
:func:`plan_deliveries` (who gets what), :func:`build_message` (one message),
:class:`ReportFile`, :class:`Delivery`, :class:`DeliveryReport`, :class:`SentLedger` and
the errors :class:`DeliveryError` (exit 5) and :class:`DeliveryTimeoutError` (exit 7).
"""

from crm_batch.app.ledger import SentLedger
from crm_batch.delivery.mail import build_message, message_id
from crm_batch.delivery.plan import Delivery, ReportFile, plan_deliveries, unaddressed_reports
from crm_batch.delivery.send import (
    DeliveryError,
    DeliveryReport,
    DeliveryTimeoutError,
    Outcome,
    deliver,
)

__all__ = [
    "Delivery",
    "DeliveryError",
    "DeliveryReport",
    "DeliveryTimeoutError",
    "Outcome",
    "ReportFile",
    "SentLedger",
    "build_message",
    "deliver",
    "message_id",
    "plan_deliveries",
    "unaddressed_reports",
]
