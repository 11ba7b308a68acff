"""LINE Login / LIFF ID token verification, done locally.

ES256 tokens are checked against LINE's JWKS (fetched over HTTP and cached); HS256 tokens with
the channel secret are accepted only in the web-login flow. The algorithm is allow-listed per
flow before any key is chosen.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Literal

import httpx
import jwt

from kuekan.errors import DomainError, known
from kuekan.settings import Settings

Flow = Literal["liff", "web"]
FLOW_ALGORITHMS: dict[str, list[str]] = {"liff": ["ES256"], "web": ["HS256", "ES256"]}


def invalid_id_token(detail: str) -> DomainError:
    return known("invalid_id_token", en=f"LINE ID token rejected: {detail}")


class JwksCache:
    """LINE's signing keys, refetched when stale or when an unknown kid appears (bounded)."""

    def __init__(self, url: str, ttl_s: int, http: httpx.AsyncClient | None = None) -> None:
        self._url = url
        self._ttl_s = ttl_s
        self._http = http or httpx.AsyncClient(timeout=5.0)
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> Any:
        stale = time.monotonic() - self._fetched_at > self._ttl_s
        if stale or kid not in self._keys:
            await self._refresh(min_age_s=0 if stale else 10)
        if kid not in self._keys:
            raise invalid_id_token("unknown key id")
        return self._keys[kid]

    async def _refresh(self, min_age_s: float) -> None:
        async with self._lock:
            if time.monotonic() - self._fetched_at < min_age_s:
                return
            try:
                resp = await self._http.get(self._url)
                resp.raise_for_status()
                keys = resp.json()["keys"]
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                raise known("line_unavailable", en=f"LINE keys unavailable: {exc}") from None
            self._keys = {
                k["kid"]: jwt.algorithms.ECAlgorithm.from_jwk(json.dumps(k))
                for k in keys if k.get("kty") == "EC" and "kid" in k
            }
            self._fetched_at = time.monotonic()


class LineVerifier:
    def __init__(self, settings: Settings, jwks: JwksCache) -> None:
        self._s = settings
        self._jwks = jwks

    async def verify(self, id_token: str, flow: Flow, nonce: str | None) -> dict[str, Any]:
        """Return the verified claims (``sub``, ``name``, ...) or raise ``invalid_id_token``."""
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise invalid_id_token("malformed") from None
        alg = header.get("alg")
        allowed = FLOW_ALGORITHMS[flow]
        if alg not in allowed:
            raise invalid_id_token(f"algorithm {alg!r} not allowed for {flow}")
        key: Any = (self._s.line_channel_secret if alg == "HS256"
                    else await self._jwks.key(str(header.get("kid", ""))))
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token, key, algorithms=[alg], audience=self._s.line_channel_id,
                issuer=self._s.line_issuer,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]})
        except jwt.PyJWTError as exc:
            raise invalid_id_token(str(exc)) from None
        if nonce is not None and claims.get("nonce") != nonce:
            raise invalid_id_token("nonce mismatch")
        return claims
