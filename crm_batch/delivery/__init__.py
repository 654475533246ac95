"""E-mail delivery of the rendered PDF reports (recipients only from the settings).

Public API: :func:`deliver` (plan, skip what was sent, send, report), :func:`send_planned`
(its second half, for messages planned elsewhere), :func:`plan_deliveries` (who gets
what), :func:`build_message` (one message), :func:`notify_failure` (the failure notice to
``email.ops_recipients``), :class:`ReportFile`, :class:`ReportSummary`,
:class:`Delivery`, :class:`DeliveryReport`, :class:`SentLedger` and the errors
:class:`DeliveryError` (exit 5), :class:`DeliveryTimeoutError` (exit 7) and
:class:`DeliveryScopeError` (exit 4).
"""

from crm_batch.app.ledger import SentLedger
from crm_batch.delivery.mail import build_message, message_id
from crm_batch.delivery.ops import notify_failure
from crm_batch.delivery.plan import Delivery, ReportFile, plan_deliveries, unaddressed_reports
from crm_batch.delivery.send import (
    DeliveryError,
    DeliveryReport,
    DeliveryScopeError,
    DeliveryTimeoutError,
    Outcome,
    deliver,
    send_planned,
)
from crm_batch.delivery.summary import Headline, ReportSummary

__all__ = [
    "Delivery",
    "DeliveryError",
    "DeliveryReport",
    "DeliveryScopeError",
    "DeliveryTimeoutError",
    "Headline",
    "Outcome",
    "ReportFile",
    "ReportSummary",
    "SentLedger",
    "build_message",
    "deliver",
    "message_id",
    "notify_failure",
    "plan_deliveries",
    "send_planned",
    "unaddressed_reports",
]
