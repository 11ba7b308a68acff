"""The ledger under concurrency, through the HTTP API and the service, on real storage."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from kuekan.errors import DomainError
from kuekan.idempotency import request_hash
from kuekan.ledger import repository as repo
from kuekan.ledger.check import check_ledger
from kuekan.ledger.service import Ledger
from tests.conftest import World, assert_ledger_ok, idem


async def balance(pool: asyncpg.Pool, member_id: int) -> tuple[int, int]:
    row = await pool.fetchrow("select posted, reserved from member_balances where member_id = $1",
                              member_id)
    assert row is not None
    return row["posted"], row["reserved"]


async def test_200_concurrent_awards_and_adjustments_leave_an_exact_balance(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    member_id, _ = await world.member()
    funder = await world.funder()
    admin = await world.admin()
    amounts = [7 if i % 4 else -3 for i in range(200)]
    # Seed enough points first so the adjustments down never meet an empty pocket.
    r = await http.post("/admin/awards", headers=admin | idem(), json={
        "member_id": member_id, "points": 1000, "funder_id": funder, "reason": "seed"})
    assert r.status_code == 201

    async def send(points: int) -> httpx.Response:
        return await http.post("/admin/awards", headers=admin | idem(), json={
            "member_id": member_id, "points": points, "funder_id": funder, "reason": "load"})

    responses = await asyncio.gather(*(send(a) for a in amounts))
    assert [x.status_code for x in responses] == [201] * 200
    assert await balance(pool, member_id) == (1000 + sum(amounts), 0)
    assert len({x.json()["transfer_id"] for x in responses}) == 200
    await assert_ledger_ok(pool)


async def test_100_concurrent_requests_with_one_key_apply_once(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    member_id, _ = await world.member()
    funder = await world.funder()
    admin = await world.admin()
    headers = admin | idem()
    body = {"member_id": member_id, "points": 25, "funder_id": funder, "reason": "once"}
    responses = await asyncio.gather(*(http.post("/admin/awards", headers=headers, json=body)
                                       for _ in range(100)))
    codes = [x.status_code for x in responses]
    assert set(codes) <= {201, 409}, codes
    ok = [x for x in responses if x.status_code == 201]
    assert len({x.json()["transfer_id"] for x in ok}) == 1
    assert sum(1 for x in ok if x.headers.get("idempotent-replayed") != "true") == 1
    for x in responses:
        if x.status_code == 409:
            assert x.json()["code"] == "idempotency_key_in_flight"
    n = await pool.fetchval("select count(*) from transfers where member_id = $1", member_id)
    assert n == 1
    assert await balance(pool, member_id) == (25, 0)
    # Settled: the replay is the original, and a different body with the key is refused.
    again = await http.post("/admin/awards", headers=headers, json=body)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == ok[0].json()
    other = await http.post("/admin/awards", headers=headers, json={**body, "points": 26})
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert await balance(pool, member_id) == (25, 0)


async def test_redis_flushed_between_request_and_retry_still_one_transfer(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool,
        redis: aioredis.Redis) -> None:
    member_id, _ = await world.member()
    funder = await world.funder()
    admin = await world.admin()
    headers = admin | idem()
    body = {"member_id": member_id, "points": 40, "funder_id": funder, "reason": "flush"}
    first = await http.post("/admin/awards", headers=headers, json=body)
    assert first.status_code == 201
    await redis.flushdb()
    retry = await http.post("/admin/awards", headers=headers, json=body)
    assert retry.status_code == 201
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json()["transfer_id"] == first.json()["transfer_id"]
    assert await pool.fetchval("select count(*) from transfers where member_id = $1",
                               member_id) == 1


async def test_missing_key_is_400_and_changes_nothing(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    member_id, _ = await world.member()
    funder = await world.funder()
    admin = await world.admin()
    r = await http.post("/admin/awards", headers=admin, json={
        "member_id": member_id, "points": 5, "funder_id": funder, "reason": "x"})
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "idempotency_key_required" and r.json()["message_th"]
    assert await balance(pool, member_id) == (0, 0)


@pytest.mark.parametrize("flush_mid_run", [False, True])
async def test_daily_cap_is_never_exceeded_under_100_concurrent_earns(
        world: World, pool: asyncpg.Pool, redis: aioredis.Redis, flush_mid_run: bool) -> None:
    """Members' daily earning cap (1,000 in test config) holds, with Redis flushed or not."""
    ledger = Ledger(pool, _gate(redis, world), world.settings)
    member_id, _ = await world.member()
    funder = await world.funder()
    cap = world.settings.member_daily_cap_points
    per = 37

    async def earn(i: int) -> int:
        if flush_mid_run and i == 50:
            await redis.flushdb()
        try:
            await ledger.award(scope=f"m:{member_id}", key=uuid.uuid4().hex,
                               req_hash=request_hash(i), member_id=member_id, funder_id=funder,
                               points=per)
        except DomainError as err:
            assert err.code == "daily_limit_reached"
            return 0
        return per

    awarded = sum(await asyncio.gather(*(earn(i) for i in range(100))))
    posted, _ = await balance(pool, member_id)
    assert posted == awarded
    assert posted <= cap
    assert posted == (cap // per) * per  # every request that fits got in, no more
    day_total = await pool.fetchval("select points from member_daily where member_id = $1",
                                    member_id)
    assert day_total == posted
    await assert_ledger_ok(pool)


def _gate(redis: aioredis.Redis, world: World):  # type: ignore[no-untyped-def]
    from kuekan.idempotency import Gate

    return Gate(redis, lease_s=30, keep_s=600)


async def test_overdraft_20_parallel_reserves_against_a_balance_for_5(
        world: World, pool: asyncpg.Pool, http: httpx.AsyncClient) -> None:
    member_id, _ = await world.member()
    funder = await world.funder()
    admin = await world.admin()
    await http.post("/admin/awards", headers=admin | idem(), json={
        "member_id": member_id, "points": 100, "funder_id": funder, "reason": "seed"})
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)

    async def reserve() -> bool:
        try:
            await repo.reserve(pool, member_id, 20, expires, {})
        except DomainError as err:
            assert err.code == "insufficient_points"
            return False
        return True

    results = await asyncio.gather(*(reserve() for _ in range(20)))
    assert sum(results) == 5
    posted, reserved = await balance(pool, member_id)
    assert (posted, reserved) == (100, 100)
    await assert_ledger_ok(pool)


async def test_database_refuses_a_negative_available_balance_even_from_raw_sql(
        world: World, pool: asyncpg.Pool) -> None:
    member_id, _ = await world.member()
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute("update member_balances set reserved = 5 where member_id = $1",
                           member_id)


async def test_reserve_post_void_and_reverse_keep_every_invariant(
        world: World, pool: asyncpg.Pool, http: httpx.AsyncClient) -> None:
    member_id, _ = await world.member()
    funder = await world.funder()
    admin = await world.admin()
    r = await http.post("/admin/awards", headers=admin | idem(), json={
        "member_id": member_id, "points": 100, "funder_id": funder, "reason": "seed"})
    award_id = r.json()["transfer_id"]
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    p1 = await repo.reserve(pool, member_id, 30, expires, {})
    p2 = await repo.reserve(pool, member_id, 20, expires, {})
    assert await balance(pool, member_id) == (100, 50)
    merchant_acct = await pool.fetchval(
        "insert into accounts (kind, owner_id) values ('merchant_redemption', $1) returning id",
        900_000 + member_id)
    await repo.post(pool, p1["pending_id"], merchant_acct, {}, 16)
    with pytest.raises(DomainError) as again:
        await repo.post(pool, p1["pending_id"], merchant_acct, {}, 16)
    assert again.value.code == "coupon_already_used"
    await repo.void(pool, p2["pending_id"])
    with pytest.raises(DomainError):
        await repo.void(pool, p2["pending_id"])
    assert await balance(pool, member_id) == (70, 0)
    # The award can be reversed only while the points are there, and only once.
    with pytest.raises(DomainError) as short:
        await repo.reverse(pool, award_id, {}, 16)
    assert short.value.code == "insufficient_points"
    r2 = await http.post("/admin/awards", headers=admin | idem(), json={
        "member_id": member_id, "points": 50, "funder_id": funder, "reason": "more"})
    rev = await http.post(f"/admin/transfers/{award_id}/reverse", headers=admin | idem(),
                          json={"reason": "fraud"})
    assert rev.status_code == 201, rev.text
    assert rev.json()["balance"] == 20
    twice = await http.post(f"/admin/transfers/{award_id}/reverse", headers=admin | idem(),
                            json={"reason": "fraud"})
    assert twice.status_code == 409 and twice.json()["code"] == "transfer_already_reversed"
    assert r2.status_code == 201
    results = await check_ledger(pool)
    assert all(x.ok for x in results), results


async def test_transfers_are_append_only(world: World, pool: asyncpg.Pool,
                                         http: httpx.AsyncClient) -> None:
    member_id, _ = await world.member()
    funder = await world.funder()
    admin = await world.admin()
    r = await http.post("/admin/awards", headers=admin | idem(), json={
        "member_id": member_id, "points": 9, "funder_id": funder, "reason": "x"})
    tid = r.json()["transfer_id"]
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await pool.execute("update transfers set amount = 1 where id = $1", tid)
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await pool.execute("delete from transfers where id = $1", tid)


async def test_check_ledger_detects_a_tampered_balance(world: World, pool: asyncpg.Pool,
                                                       http: httpx.AsyncClient) -> None:
    member_id, _ = await world.member()
    funder = await world.funder()
    admin = await world.admin()
    await http.post("/admin/awards", headers=admin | idem(), json={
        "member_id": member_id, "points": 10, "funder_id": funder, "reason": "x"})
    class Rollback(Exception):
        pass

    with pytest.raises(Rollback):
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "update member_balances set posted = posted + 1 where member_id = $1", member_id)
            failed = {r.name.split(" ")[0] for r in await check_ledger(conn) if not r.ok}
            assert {"1.", "3.", "5b."} <= failed
            raise Rollback
    await assert_ledger_ok(pool)


async def test_funder_budget_is_enforced_across_slices(
        world: World, pool: asyncpg.Pool, http: httpx.AsyncClient) -> None:
    funder = await world.funder(budget=500)
    admin = await world.admin()
    members = await world.members(40)

    async def send(mid: int) -> httpx.Response:
        return await http.post("/admin/awards", headers=admin | idem(), json={
            "member_id": mid, "points": 30, "funder_id": funder, "reason": "budget"})

    responses = await asyncio.gather(*(send(m) for m, _ in members))
    ok = [r for r in responses if r.status_code == 201]
    refused = [r for r in responses if r.status_code == 409]
    assert len(ok) + len(refused) == 40
    assert all(r.json()["code"] == "funder_budget_exhausted" for r in refused)
    issued = await pool.fetchval("select coalesce(sum(amount), 0) from transfers"
                                 " where funder_id = $1", funder)
    assert issued == 30 * len(ok) <= 500
    assert len(ok) == 500 // 30  # slices never strand budget: every award that fits is made


async def test_metrics_count_awards_and_replays(http: httpx.AsyncClient, world: World,
                                                api_url: str) -> None:
    def value(text: str, name: str) -> float:
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name) and not line.startswith("#"))

    before = (await http.get(f"{api_url}/metrics")).text
    member_id, _ = await world.member()
    funder = await world.funder()
    admin = await world.admin()
    headers = admin | idem()
    body = {"member_id": member_id, "points": 3, "funder_id": funder, "reason": "metrics"}
    assert (await http.post("/admin/awards", headers=headers, json=body)).status_code == 201
    assert (await http.post("/admin/awards", headers=headers, json=body)).status_code == 201
    after = (await http.get(f"{api_url}/metrics")).text
    assert value(after, "kuekan_awards_total") == value(before, "kuekan_awards_total") + 1
    assert value(after, "kuekan_idempotent_replays_total") == (
        value(before, "kuekan_idempotent_replays_total") + 1)
