"""Every controller of the worker-side domains (outbox, fraud, notify, privacy), registered in
kuekan.app with one entry."""

from __future__ import annotations

from typing import Any

from kuekan.fraud.routes import FraudAdminController
from kuekan.notify.routes import BroadcastAdminController, LineWebhookController, PhoneOtpController
from kuekan.outbox.routes import OutboxAdminController
from kuekan.privacy.routes import PrivacyController

WORKER_ROUTES: list[Any] = [OutboxAdminController, FraudAdminController, LineWebhookController,
                            BroadcastAdminController, PhoneOtpController, PrivacyController]
