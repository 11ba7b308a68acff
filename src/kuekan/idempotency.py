"""Idempotency keys: Redis ``SET NX`` in front, the PostgreSQL record behind.

The durable record is written by the ledger SQL function in the same transaction as the effect,
so a retry after Redis lost its copy still finds it there (DESIGN.md §4).
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from kuekan import cache
from kuekan.errors import DomainError, known
from kuekan.logging import get_logger

log = get_logger(__name__)

KEY_MAX_LEN = 255

IN_FLIGHT = known("idempotency_key_in_flight")


def key_reused() -> DomainError:
    return known("idempotency_key_reused")


def key_required() -> DomainError:
    return known("idempotency_key_required")


class Outcome(msgspec.Struct):
    """An idempotent operation's response, and whether it is the replay of an earlier one."""

    status: int
    body: Any
    replayed: bool = False


def validate_key(key: str | None) -> str:
    if key is None or not 1 <= len(key) <= KEY_MAX_LEN or not key.isprintable():
        raise key_required()
    return key


def request_hash(payload: Any) -> str:
    """Hash of the canonical JSON of a decoded request (field order fixed by the Struct)."""
    return hashlib.sha256(msgspec.json.encode(payload)).hexdigest()[:32]


class Replay(msgspec.Struct):
    """A stored response to return again."""

    status: int
    body: Any


class Stored(msgspec.Struct):
    hash: str
    status: int
    body: Any


class LimitCheck(msgspec.Struct, frozen=True):
    """One Redis counter to check and add: refusal code when ``cap`` would be exceeded."""

    key: str
    cap: int
    code: str


def resolve_stored(stored: Stored, req_hash: str) -> Replay:
    """The replay for a stored record, or the right refusal."""
    if stored.hash != req_hash:
        raise key_reused()
    if stored.status == 0:
        raise IN_FLIGHT
    return Replay(status=stored.status, body=stored.body)


class Gate:
    """The Redis side: claim a key and take limit counters in one script call."""

    def __init__(self, redis: aioredis.Redis, *, lease_s: int, keep_s: int) -> None:
        self._redis = redis
        self._lease_s = lease_s
        self._keep_s = keep_s
        self._claim = redis.register_script(cache.CLAIM_AND_LIMIT)
        self._release = redis.register_script(cache.RELEASE)

    async def claim(self, scope: str, key: str, req_hash: str, amount: int,
                    limits: list[LimitCheck]) -> Replay | None:
        """Claim ``key``; None means go on. Raises on in-flight, reuse or a limit refusal.

        When Redis is unreachable the claim is skipped: PostgreSQL decides alone.
        """
        try:
            res = await self._claim(
                keys=[cache.idem_key(scope, key), *(lim.key for lim in limits)],
                args=[f"inflight:{req_hash}", self._lease_s, 2 * 86400, amount,
                      *(lim.cap for lim in limits)],
            )
        except RedisError as exc:
            log.warning("redis_unavailable", op="idempotency_claim", error=str(exc))
            return None
        if res[0] == 0:
            return None
        if res[0] == 2:
            lim = limits[int(res[1]) - 1]
            raise known(lim.code, 409)
        raw: bytes = res[1] or b""
        if raw.startswith(b"inflight:"):
            if raw[len(b"inflight:"):].decode() != req_hash:
                raise key_reused()
            raise IN_FLIGHT
        if not raw:  # expired between SET and GET: let PostgreSQL decide
            return None
        return resolve_stored(msgspec.json.decode(raw, type=Stored), req_hash)

    async def finish(self, scope: str, key: str, req_hash: str, status: int, body: Any) -> None:
        """Remember the response so retries are answered from Redis."""
        try:
            await self._redis.set(
                cache.idem_key(scope, key),
                msgspec.json.encode(Stored(hash=req_hash, status=status, body=body)),
                ex=self._keep_s,
            )
        except RedisError as exc:
            log.warning("redis_unavailable", op="idempotency_finish", error=str(exc))

    async def abort(self, scope: str, key: str, amount: int, limits: list[LimitCheck],
                    *, drop_key: bool = True) -> None:
        """Give back counters (and drop the lease) after a failure that changed nothing."""
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                if drop_key:
                    pipe.delete(cache.idem_key(scope, key))
                if limits and amount:
                    await self._release(keys=[lim.key for lim in limits], args=[amount],
                                        client=pipe)
                await pipe.execute()
        except RedisError as exc:
            log.warning("redis_unavailable", op="idempotency_abort", error=str(exc))
