"""Staff and admin principals: the per-request liveness check, LINE sign-in by invitation, and
refresh-token rotation for every principal.

Revocation. A staff or admin access token names the staff row and the row's ``token_version``
(claim ``ver``). :class:`StaffGate` checks each request's principal against the row — active,
same version, same role, merchant and organisation, merchant not suspended — keeping a row for
``staff_check_cache_s`` (2 s) per process. Disabling bumps the version, so a disabled person's
tokens stop within that time in every process, without a deny-list to distribute. The cost is
one small indexed read per staff principal per process every two seconds; members do not pay it.

Refresh tokens rotate: each is stored by jti in a family started at sign-in, used once, and
replaced by a new one in the same family. Using one twice revokes the family (the legitimate
holder and the thief both have to sign in again). A refresh also re-reads the principal: a
banned or erased member, a disabled or re-linked staff member gets no new token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
import uuid
from typing import Any

import asyncpg

from kuekan.auth import repository as repo
from kuekan.auth.tokens import Principal, TokenService
from kuekan.errors import DomainError, known
from kuekan.settings import Settings

STAFF_CACHE_MAX = 10_000
MEMBER_STATUSES_REFUSED = frozenset({"banned", "erased"})


def staff_disabled() -> DomainError:
    return known("staff_disabled")


def merchant_suspended() -> DomainError:
    return known("merchant_suspended", 403)


def member_banned() -> DomainError:
    return known("member_banned")


def refresh_refused(code: str = "refresh_token_invalid") -> DomainError:
    assert code in {"refresh_token_invalid", "refresh_token_reused"}
    return known(code)


def invitation_invalid() -> DomainError:
    return known("invitation_invalid")


def staff_not_invited() -> DomainError:
    return known("staff_not_invited")


def code_hash(code: str) -> str:
    return hashlib.sha256(code.strip().encode()).hexdigest()


def new_invitation_code() -> str:
    """About 128 bits, URL-safe: typed or sent as a link, never guessed."""
    return secrets.token_urlsafe(16)


def row_matches(principal: Principal, row: Any) -> bool:
    return (row is not None and row["status"] == "active"
            and row["token_version"] == principal.version and row["role"] == principal.role
            and row["merchant_id"] == principal.merchant_id and row["org"] == principal.org)


class StaffGate:
    """Checks a staff or admin principal against its row, each row cached briefly."""

    def __init__(self, pool: asyncpg.Pool, cache_s: float) -> None:
        self._pool = pool
        self._cache_s = cache_s
        self._rows: dict[int, tuple[float, asyncpg.Record | None]] = {}

    def forget(self, staff_id: int) -> None:
        """This process changed the row: check it afresh at once."""
        self._rows.pop(staff_id, None)

    async def check(self, principal: Principal) -> None:
        now = time.monotonic()
        hit = self._rows.get(principal.subject_id)
        if hit is None or hit[0] <= now:
            row = await repo.staff_state(self._pool, principal.subject_id)
            if len(self._rows) >= STAFF_CACHE_MAX:
                self._rows.clear()  # bounded; a cold cache costs one read per principal
            self._rows[principal.subject_id] = (now + self._cache_s, row)
        else:
            row = hit[1]
        if not row_matches(principal, row):
            raise staff_disabled()
        assert row is not None
        if principal.role == "merchant" and row["merchant_status"] != "active":
            raise merchant_suspended()


class Sessions:
    """Issue access + refresh pairs, rotate refresh tokens, revoke families."""

    def __init__(self, pool: asyncpg.Pool, tokens: TokenService, settings: Settings) -> None:
        self.pool = pool
        self.tokens = tokens
        self.settings = settings

    def access_ttl_s(self, principal: Principal) -> int:
        return (self.settings.access_ttl_s if principal.role == "member"
                else self.settings.staff_access_ttl_s)

    async def issue(self, conn: Any, principal: Principal,
                    family: str | None = None) -> tuple[str, str, int]:
        """A new access token and a stored refresh token (a new family unless given)."""
        ttl = self.access_ttl_s(principal)
        jti = uuid.uuid4().hex
        family = family or uuid.uuid4().hex
        now = time.time()
        refresh = self.tokens.issue(principal, "refresh", now=now,
                                    extra={"jti": jti, "fam": family})
        expires = dt.datetime.fromtimestamp(now + self.settings.refresh_ttl_s, dt.UTC)
        await repo.store_refresh(conn, jti, family,
                                 "member" if principal.role == "member" else "staff",
                                 principal.subject_id, expires)
        return self.tokens.issue(principal, ttl_s=ttl, now=now), refresh, ttl

    async def refresh(self, refresh_token: str) -> tuple[Principal, str, str, int]:
        """Rotate: the old token is used up, a new pair is issued in the same family."""
        claims = self.tokens.decode(refresh_token, "refresh")
        jti = str(claims.get("jti", ""))
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                used = await repo.use_refresh(conn, jti)
                family = None if used is not None else await repo.refresh_family(conn, jti)
                if used is None and family is not None:
                    await repo.revoke_family(conn, family)
            if used is None:
                raise refresh_refused("refresh_token_reused" if family is not None
                                      else "refresh_token_invalid")
            principal = await self._current(conn, used["kind"], used["subject_id"], claims)
            if principal is None:
                await repo.revoke_family(conn, used["family"])
                raise (member_banned() if used["kind"] == "member" else staff_disabled())
            async with conn.transaction():
                access, refresh, ttl = await self.issue(conn, principal, used["family"])
        return principal, access, refresh, ttl

    async def _current(self, conn: Any, kind: str, subject_id: int,
                       claims: dict[str, Any]) -> Principal | None:
        """The principal as it is now, or None when it may no longer sign in."""
        if kind == "member":
            status = await repo.member_status(conn, subject_id)
            if status is None or status in MEMBER_STATUSES_REFUSED:
                return None
            return Principal("member", subject_id, str(claims.get("lsub", "")))
        row = await repo.staff_state(conn, subject_id)
        stated = Principal(claims.get("role", ""), subject_id, str(claims.get("lsub", "")),
                           merchant_id=claims.get("mid"), org=claims.get("org"),
                           version=int(claims.get("ver", 0)))
        if not row_matches(stated, row):
            return None
        return stated

    async def revoke(self, refresh_token: str) -> int:
        """Sign out: revoke the family of a (still verifiable) refresh token."""
        claims = self.tokens.decode(refresh_token, "refresh")
        async with self.pool.acquire() as conn:
            family = await repo.refresh_family(conn, str(claims.get("jti", "")))
            return 0 if family is None else await repo.revoke_family(conn, family)
