"""How many OTP SMS may be asked for: per member, per phone number and in all, per hour.

Every OTP request sends a paid SMS to a number the caller chooses, so without bounds one member
token can pump SMS (toll fraud) or flood a stranger's phone. Three fixed one-hour windows,
counted in Redis by one script call that checks all three and counts only when all have room
(a refused request spends nothing): ``otp_per_member_per_hour`` stops one account,
``otp_per_phone_per_hour`` stops many accounts aiming at one phone, ``otp_global_per_hour``
caps the whole service's SMS spend should many accounts and numbers be used at once.

What this trades: the counts live only in Redis. A Redis flush gives each bucket a fresh hour
(at most one extra hour's worth); with Redis unreachable the request fails as 503 and no SMS
is sent — an OTP is never worth sending unbounded.
"""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as aioredis

from kuekan.errors import DomainError, known
from kuekan.settings import Settings

WINDOW_S = 3600
# KEYS: the buckets; ARGV: each bucket's limit, then the keys' time to live. Returns 0 when
# counted, else the 1-based index of the first full bucket (nothing counted then).
TAKE = """
for i, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') >= tonumber(ARGV[i]) then return i end
end
for _, key in ipairs(KEYS) do
  redis.call('INCR', key)
  redis.call('EXPIRE', key, ARGV[#KEYS + 1])
end
return 0
"""
BUCKETS = ("member", "phone", "global")


def keys(member_id: int, phone: str, now: float) -> list[str]:
    window = int(now) // WINDOW_S
    return [f"kk:otp:m:{member_id}:{window}", f"kk:otp:p:{phone}:{window}",
            f"kk:otp:g:{window}"]


def otp_rate_limited(bucket: str, limit: int, retry_after_s: int) -> DomainError:
    return known(
        "otp_rate_limited",
        en=f"Too many OTP requests ({bucket}: at most {limit} an hour); retry in {retry_after_s} s",
        limit_scope=bucket, limit_per_hour=limit, retry_after_s=retry_after_s)


async def take(redis: aioredis.Redis, settings: Settings, member_id: int, phone: str,
               now: float | None = None) -> None:
    """Count one OTP request, or raise ``otp_rate_limited`` (429) when a bucket is full."""
    now = time.time() if now is None else now
    limits = [settings.otp_per_member_per_hour, settings.otp_per_phone_per_hour,
              settings.otp_global_per_hour]
    script: Any = redis.register_script(TAKE)
    full = int(await script(keys=keys(member_id, phone, now), args=[*limits, WINDOW_S]))
    if full:
        raise otp_rate_limited(BUCKETS[full - 1], limits[full - 1],
                               WINDOW_S - int(now) % WINDOW_S)
