"""KueKan JWTs (HS256 with a key id for rotation) for members, merchant staff and admins."""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

import jwt
import msgspec

from kuekan.errors import DomainError, known
from kuekan.settings import Settings

Role = Literal["member", "merchant", "admin"]
TokenType = Literal["access", "refresh", "member_qr"]

# Our own tokens are HS256 only: "none", RS/ES and anything else is refused before any key is
# looked at, so an attacker cannot pick the algorithm (HS/ES confusion).
ALLOWED_ALGORITHMS = ["HS256"]
PRINCIPAL_CACHE_MAX = 50_000


_SCOPE_PREFIX = {"member": "m", "merchant": "s", "admin": "a"}


class Principal(msgspec.Struct, frozen=True):
    """Who is calling: a member, merchant staff (scoped to a merchant) or an admin (an org)."""

    role: Role
    subject_id: int
    line_sub: str = ""
    merchant_id: int | None = None
    org: str | None = None
    # Staff and admins: the staff row's token_version when the token was issued; a disabled or
    # re-linked principal has a newer version, so its older tokens stop (kuekan.auth.staff).
    version: int = 0

    @property
    def scope(self) -> str:
        """Idempotency keys are scoped to the caller."""
        return f"{_SCOPE_PREFIX[self.role]}:{self.subject_id}"


def unauthorized(detail: str = "Missing or invalid access token") -> DomainError:
    return known("unauthorized", en=detail)


class TokenService:
    """Issue and verify KueKan tokens with the configured key ring."""

    def __init__(self, settings: Settings) -> None:
        if settings.jwt_active_kid not in settings.jwt_keys:
            raise ValueError("jwt_active_kid must name one of jwt_keys")
        self._keys = dict(settings.jwt_keys)
        self._kid = settings.jwt_active_kid
        self._issuer = settings.jwt_issuer
        self._settings = settings
        self._cache: dict[str, tuple[Principal, float]] = {}

    def issue(self, principal: Principal, typ: TokenType = "access",
              ttl_s: int | None = None, now: float | None = None,
              extra: dict[str, Any] | None = None) -> str:
        now = time.time() if now is None else now
        ttl = ttl_s if ttl_s is not None else {
            "access": self._settings.access_ttl_s,
            "refresh": self._settings.refresh_ttl_s,
            "member_qr": self._settings.member_qr_ttl_s,
        }[typ]
        claims: dict[str, Any] = {
            "iss": self._issuer, "sub": str(principal.subject_id), "role": principal.role,
            "typ": typ, "iat": int(now), "exp": int(now + ttl), "jti": uuid.uuid4().hex,
        }
        if principal.line_sub:
            claims["lsub"] = principal.line_sub
        if principal.merchant_id is not None:
            claims["mid"] = principal.merchant_id
        if principal.org is not None:
            claims["org"] = principal.org
        if principal.version:
            claims["ver"] = principal.version
        claims.update(extra or {})
        return jwt.encode(claims, self._keys[self._kid], algorithm="HS256",
                          headers={"kid": self._kid})

    def decode(self, token: str, typ: TokenType = "access",
               leeway_s: float = 0, now: float | None = None) -> dict[str, Any]:
        """Verify signature, kid, issuer, expiry and type; return the claims."""
        try:
            header = jwt.get_unverified_header(token)
            kid = header.get("kid")
            if header.get("alg") not in ALLOWED_ALGORITHMS or kid not in self._keys:
                raise unauthorized("Token signed with an unknown key or algorithm")
            opts: Any = {"require": ["exp", "iat", "sub", "typ"]}
            if now is not None:
                opts["verify_exp"] = False
            claims: dict[str, Any] = jwt.decode(
                token, self._keys[kid], algorithms=ALLOWED_ALGORITHMS, issuer=self._issuer,
                leeway=leeway_s, options=opts)
        except jwt.PyJWTError as exc:
            raise unauthorized(f"Invalid token: {exc}") from None
        if now is not None and claims["exp"] + leeway_s < now:
            raise unauthorized("Token expired at the given time")
        if claims.get("typ") != typ:
            raise unauthorized("Wrong token type")
        return claims

    def principal(self, token: str) -> Principal:
        """Verify an access token; verified tokens are cached until they expire."""
        hit = self._cache.get(token)
        if hit is not None and hit[1] > time.time():
            return hit[0]
        claims = self.decode(token, "access")
        principal = principal_from_claims(claims)
        if len(self._cache) >= PRINCIPAL_CACHE_MAX:
            self._cache.clear()  # bounded; a cold cache only costs a signature check
        self._cache[token] = (principal, float(claims["exp"]))
        return principal


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    try:
        return Principal(
            role=claims["role"], subject_id=int(claims["sub"]), line_sub=claims.get("lsub", ""),
            merchant_id=claims.get("mid"), org=claims.get("org"),
            version=int(claims.get("ver", 0)))
    except (KeyError, ValueError, TypeError, msgspec.ValidationError):
        raise unauthorized("Malformed token claims") from None
