"""Delivering stored notifications exactly once: the retry key was committed before the
first attempt, so a retry after a crash or a lost answer resends with the same key and LINE (or
the SMS gateway) answers 409 instead of delivering twice."""

from __future__ import annotations

from typing import Any

import asyncpg

from kuekan import metrics
from kuekan.logging import get_logger
from kuekan.notify import repository as repo
from kuekan.notify.line import LineClient, LineError, MulticastResult
from kuekan.notify.sms import SmsClient, SmsError
from kuekan.notify.transport import SendResult

log = get_logger("kuekan.notify")
CAMPAIGN_ENDPOINTS = frozenset({"multicast", "narrowcast", "broadcast"})


class DeliveryRetry(Exception):  # noqa: N818 - a signal for the job to retry later
    def __init__(self, message_id: int, error: str, retry_after_s: float | None) -> None:
        super().__init__(error)
        self.message_id = message_id
        self.retry_after_s = retry_after_s


async def deliver(pool: asyncpg.Pool, line: LineClient | None, sms: SmsClient | None,
                  message_id: int) -> str:
    """Send one stored message if still pending; returns its final status.

    Raises :class:`DeliveryRetry` when the service may accept it later (429, 5xx, network).
    """
    msg = await repo.get_message(pool, message_id)
    if msg is None:
        return "missing"
    if msg["status"] != "pending":
        return str(msg["status"])
    client = line if msg["channel"] == "line" else sms
    if client is None:
        await repo.finish(pool, message_id, "skipped", None, f"no {msg['channel']} channel")
        return "skipped"
    if msg["endpoint"] == "push" and msg["member_id"] and not await repo.opted_in(
            pool, msg["member_id"]):
        await repo.finish(pool, message_id, "skipped", None, "opted_out")
        return "skipped"
    attempt = await repo.start_attempt(pool, message_id)
    try:
        if isinstance(client, LineClient) and msg["endpoint"] in CAMPAIGN_ENDPOINTS \
                and attempt == 1:
            needed = len(msg["recipients"]) or int(msg["options"].get("audience_size", 0))
            if not await client.check_quota(needed):
                await repo.finish(pool, message_id, "skipped", None, "monthly_quota")
                log.warning("line_quota_exhausted", message_id=message_id, needed=needed)
                return "skipped"
        ids = await _send(client, msg)
    except (LineError, SmsError) as exc:
        if exc.status == 429:
            metrics.LINE_429.inc()
        if exc.retryable:
            await repo.note_error(pool, message_id, str(exc)[:500])
            raise DeliveryRetry(message_id, str(exc), exc.retry_after_s) from exc
        await repo.finish(pool, message_id, "failed", None, str(exc)[:500])
        return "failed"
    await repo.finish(pool, message_id, "sent", ids, None, redact=msg["channel"] == "sms")
    return "sent"


async def _send(client: LineClient | SmsClient, msg: asyncpg.Record) -> list[str | None]:
    key = str(msg["retry_key"])
    messages: list[dict[str, Any]] = msg["messages"]
    if isinstance(client, SmsClient):
        r: SendResult | MulticastResult = await client.send(
            msg["recipients"][0], messages[0]["text"], idempotency_key=key)
    elif msg["endpoint"] == "push":
        r = await client.push(msg["recipients"][0], messages, retry_key=key)
    elif msg["endpoint"] == "multicast":
        r = await client.multicast(msg["recipients"], messages, retry_key=key)
    elif msg["endpoint"] == "narrowcast":
        r = await client.narrowcast(messages, recipient=msg["options"].get("recipient"),
                                    retry_key=key)
    else:
        r = await client.broadcast(messages, retry_key=key)
    if isinstance(r, MulticastResult):
        return [c.request_id for c in r.chunks]
    return [r.request_id]
