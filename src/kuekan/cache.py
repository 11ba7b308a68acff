"""Redis client, key builders and the Lua scripts of the fast path.

Redis only makes the common case fast: every decision it makes is made again by PostgreSQL,
so a flushed or unreachable Redis never loses or duplicates a point.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from kuekan.settings import Settings


def redis_pool(url: str, *, max_connections: int = 256) -> aioredis.BlockingConnectionPool:
    """The connection pool every KueKan Redis client uses.

    redis-py 5.3's default asyncio ``ConnectionPool`` holds one pool-wide lock while it checks
    the connection it hands out, and that check awaits a zero-timeout read: every command of the
    process waits its turn for one event-loop iteration (redis/redis-py#3692). Under an event
    flood the API's check-ins queued there for seconds while Redis and PostgreSQL sat idle.
    ``BlockingConnectionPool`` checks the connection outside its lock, and waits up to
    ``POOL_WAIT_S`` for a free connection instead of failing at the cap.
    """
    return aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=POOL_WAIT_S,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        health_check_interval=30,
    )


# Longest wait for a free pooled connection; after it the caller sees a RedisError and takes
# the path for an unreachable Redis (PostgreSQL decides alone).
POOL_WAIT_S = 2.0


def create_redis(settings: Settings) -> aioredis.Redis:
    """A pooled client; short socket timeouts so a dead Redis degrades instead of hanging."""
    return aioredis.Redis.from_pool(redis_pool(settings.redis_url))


def idem_key(scope: str, key: str) -> str:
    return f"kk:idem:{scope}:{key}"


def member_day_key(member_id: int, day: str) -> str:
    return f"kk:lim:m:{member_id}:{day}"


def merchant_day_key(merchant_id: int, day: str) -> str:
    return f"kk:lim:s:{merchant_id}:{day}"


def budget_key(name: str) -> str:
    return f"kk:lim:b:{name}"


# One script: claim the idempotency key (SET NX with an in-flight lease) and, only if claimed,
# check-and-add every limit counter atomically. Returns:
#   {0}                     claimed, limits taken
#   {1, stored}             key already used: stored is "inflight:<hash>" or the stored response
#   {2, index}              limit number <index> (1-based) would be exceeded; nothing changed
# KEYS[1] = idempotency key, KEYS[2..] = counters; ARGV = lease value, lease ttl, counter ttl,
# amount, then one cap per counter.
CLAIM_AND_LIMIT = """
local ok = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', tonumber(ARGV[2]))
if not ok then
  return {1, redis.call('GET', KEYS[1])}
end
local amount = tonumber(ARGV[4])
for i = 2, #KEYS do
  local cap = tonumber(ARGV[3 + i])
  local cur = tonumber(redis.call('GET', KEYS[i]) or '0')
  if cur + amount > cap then
    redis.call('DEL', KEYS[1])
    return {2, i - 1}
  end
end
for i = 2, #KEYS do
  redis.call('INCRBY', KEYS[i], amount)
  redis.call('EXPIRE', KEYS[i], tonumber(ARGV[3]))
end
return {0}
"""

# Give counters back after PostgreSQL refused or failed, so Redis never drifts above the truth.
RELEASE = """
local amount = tonumber(ARGV[1])
for i = 1, #KEYS do
  local v = redis.call('DECRBY', KEYS[i], amount)
  if v < 0 then redis.call('SET', KEYS[i], 0, 'KEEPTTL') end
end
return 1
"""

# Fixed-window request counters for rate limiting: adds each process's hits since its last
# sync (ARGV[1 + i] to KEYS[i]) and returns the window totals. ARGV[1] = the window's TTL.
RATE = """
local out = {}
for i = 1, #KEYS do
  local n = tonumber(ARGV[i + 1])
  local v = redis.call('INCRBY', KEYS[i], n)
  if v == n then redis.call('EXPIRE', KEYS[i], tonumber(ARGV[1])) end
  out[i] = v
end
return out
"""
