"""LINE webhook, province broadcasts (admin), phone OTP over SMS (member)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, post
from litestar.di import Provide

from kuekan import audit
from kuekan.auth.guards import provide_admin, provide_member
from kuekan.auth.tokens import Principal
from kuekan.errors import DomainError, invalid, known
from kuekan.kit.bounds import MessageBody, MessageTitle
from kuekan.notify import otplimit
from kuekan.notify import repository as repo
from kuekan.notify.sms import normalize_msisdn
from kuekan.notify.webhook import SIGNATURE_HEADER, parse_events, verify_signature


def bad_signature() -> DomainError:
    return known("invalid_signature")


class LineWebhookController(Controller):
    path = "/line"
    tags = ["line"]

    @post("/webhook", status_code=200)
    async def webhook(self, request: Request[Any, Any, Any]) -> dict[str, int]:
        """Verify the signature over the raw body first; then each event at most once."""
        body = await request.body()
        secret = request.app.state.settings.line_channel_secret
        if not verify_signature(secret, body, request.headers.get(SIGNATURE_HEADER, "")):
            raise bad_signature()
        events = parse_events(body)
        handled = 0
        async with request.app.state.pool.acquire() as conn, conn.transaction():
            for ev in events:
                if not await repo.first_seen_webhook_event(conn, ev.webhook_event_id, ev.type,
                                                           ev.user_id):
                    continue  # a redelivery: its effect is already there
                handled += 1
                if ev.user_id and ev.type in ("follow", "unfollow"):
                    await repo.set_line_opt_in(conn, ev.user_id, ev.type == "follow")
        return {"events": len(events), "handled": handled}


DistrictCode = Annotated[str, msgspec.Meta(min_length=1, max_length=32,
                                           pattern=r"^[A-Za-z0-9_.:-]+$")]


class BroadcastIn(msgspec.Struct):
    title: MessageTitle
    body: MessageBody
    district_codes: Annotated[list[DistrictCode], msgspec.Meta(max_length=32)] | None = None
    kind: Literal["announcement", "disaster"] = "announcement"


class BroadcastAdminController(Controller):
    path = "/admin/broadcasts"
    dependencies = {"admin": Provide(provide_admin)}
    tags = ["admin"]

    @post("/", status_code=202, opt={"policy": "pao"})
    async def create(self, request: Request[Any, Any, Any], admin: Principal,
                     data: BroadcastIn) -> dict[str, Any]:
        """Queue a province broadcast to district segments (all friends when no district)."""
        if not data.title.strip() or not data.body.strip():
            raise invalid("title and body are required", "ต้องระบุหัวข้อและเนื้อหา")
        async with request.app.state.pool.acquire() as conn, conn.transaction():
            bid = await repo.create_broadcast(conn, data.kind, data.title, data.body,
                                              data.district_codes, admin.scope)
            await audit.record(conn, admin.scope, "broadcast.create", f"broadcast:{bid}",
                               {"districts": data.district_codes, "kind": data.kind})
        return {"id": bid, "status": "queued"}


class OtpIn(msgspec.Struct):
    phone: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]


class OtpVerifyIn(msgspec.Struct):
    challenge_id: uuid.UUID
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]


def _code_hash(challenge_id: uuid.UUID, code: str) -> str:
    return hashlib.sha256(f"{challenge_id}:{code}".encode()).hexdigest()


class PhoneOtpController(Controller):
    path = "/me/phone"
    dependencies = {"me": Provide(provide_member)}
    tags = ["member"]

    @post("/otp", status_code=202)
    async def request_otp(self, request: Request[Any, Any, Any], me: Principal,
                          data: OtpIn) -> dict[str, Any]:
        """Send a 6-digit code by SMS (through the outbox and the SMS adapter)."""
        phone = normalize_msisdn(data.phone)
        s = request.app.state.settings
        await otplimit.take(request.app.state.redis, s, me.subject_id, phone)
        cid = uuid.uuid4()
        code = f"{secrets.randbelow(10**6):06d}"
        async with request.app.state.pool.acquire() as conn, conn.transaction():
            await repo.create_otp(conn, cid, me.subject_id, phone, _code_hash(cid, code),
                                  s.otp_ttl_s, code)
        return {"challenge_id": str(cid), "expires_in": s.otp_ttl_s}

    @post("/verify", status_code=200)
    async def verify(self, request: Request[Any, Any, Any], me: Principal,
                     data: OtpVerifyIn) -> Response[Any]:
        s = request.app.state.settings
        async with request.app.state.pool.acquire() as conn, conn.transaction():
            row = await repo.try_otp(conn, data.challenge_id, me.subject_id,
                                     s.otp_attempts_max)
            ok = row is not None and secrets.compare_digest(
                row["code_hash"], _code_hash(data.challenge_id, data.code.strip()))
            if ok:
                assert row is not None
                await repo.verify_phone(conn, data.challenge_id, me.subject_id, row["phone"])
        if not ok:
            raise known("otp_invalid")
        return Response(content={"verified": True})
