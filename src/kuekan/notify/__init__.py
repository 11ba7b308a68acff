"""Outbound notifications: LINE Messaging API and SMS adapters, templates, LINE webhook.

Workers depend on :class:`Notifier` (``send(to, text, idempotency_key=...)``) and pick the
channel; both adapters share the retry, idempotency and rate-limit rules in ``transport``.
"""

from kuekan.notify import refusals as refusals  # registers this domain's codes
from kuekan.notify.line import LineClient, LineError, LineMulticastError, MulticastResult, Quota
from kuekan.notify.sms import SmsClient, SmsError, normalize_msisdn
from kuekan.notify.templates import TemplateError, render
from kuekan.notify.transport import Notifier, NotifyError, SendResult
from kuekan.notify.webhook import WebhookEvent, parse_events, verify_signature

__all__ = [
    "LineClient",
    "LineError",
    "LineMulticastError",
    "MulticastResult",
    "Notifier",
    "NotifyError",
    "Quota",
    "SendResult",
    "SmsClient",
    "SmsError",
    "TemplateError",
    "WebhookEvent",
    "normalize_msisdn",
    "parse_events",
    "render",
    "verify_signature",
]
