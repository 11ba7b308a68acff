"""LINE: district broadcast by multicast, retry keys on 429, the webhook and its dedup."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import httpx

from kuekan.notify.line import LineClient
from kuekan.notify.service import deliver
from kuekan.notify.webhook import compute_signature
from kuekan.outbox.jobs import handle_outbox
from kuekan.settings import Settings
from tests.fakes.line_server import FakeLineServer


async def test_district_broadcast_to_1200_members_is_three_multicasts(
        ctx: dict[str, Any], pool: asyncpg.Pool, http: httpx.AsyncClient, world: Any,
        line: LineClient, line_server: FakeLineServer) -> None:
    district = f"D{uuid.uuid4().hex[:8]}"
    members = [m for m, _ in await world.members(1200)]
    await pool.execute("update members set district_code = $1 where id = any($2::bigint[])",
                       district, members)
    opted_out = members[:5]  # unfollowed: never messaged
    await pool.execute("insert into notify_prefs (member_id, line_opt_in)"
                       " select unnest($1::bigint[]), false", opted_out)
    admin = await world.admin()
    r = await http.post("/admin/broadcasts", headers=admin, json={
        "title": "Flood warning", "body": "Move to higher ground", "kind": "disaster",
        "district_codes": [district]})
    assert r.status_code == 202, r.text
    oid = await pool.fetchval("select id from outbox where topic = 'broadcast.requested'"
                              " and payload ->> 'broadcast_id' = $1", str(r.json()["id"]))
    assert await handle_outbox(ctx, oid) == "done"
    (msg_id,) = [m["id"] for m in await pool.fetch(
        "select id from notify_messages where outbox_id = $1", oid)]
    assert await deliver(pool, line, None, msg_id) == "sent"
    calls = [d for d in line_server.deliveries if d.endpoint == "multicast"]
    assert [len(c.to) for c in calls] == [500, 500, 195]
    sent_to = {sub for c in calls for sub in c.to}
    subs = dict(await pool.fetch("select id, line_sub from members where id = any($1::bigint[])",
                                 members))
    assert sent_to == {subs[m] for m in members[5:]}
    # Delivering again (a job re-run) sends nothing more.
    assert await deliver(pool, line, None, msg_id) == "sent"
    assert len(line_server.deliveries) == 3


async def test_a_429_then_success_sends_once_with_the_stored_retry_key(
        ctx: dict[str, Any], pool: asyncpg.Pool, world: Any, line: LineClient,
        line_server: FakeLineServer) -> None:
    member, _ = await world.member()
    sub = await pool.fetchval("select line_sub from members where id = $1", member)
    async with pool.acquire() as conn:
        from kuekan.notify import repository as repo

        mid = await repo.create_message(conn, dedup_key=f"test:{uuid.uuid4()}", kind="test",
                                        channel="line", endpoint="push", member_id=member,
                                        recipients=[sub],
                                        messages=[{"type": "text", "text": "hi"}])
    assert mid is not None
    stored_key = str(await pool.fetchval("select retry_key from notify_messages where id = $1",
                                         mid))
    line_server.fail_next(1, 429, path="/v2/bot/message/push", retry_after=0)
    assert await deliver(pool, line, None, mid) == "sent"
    pushes = line_server.requests_to("/v2/bot/message/push")
    assert len(pushes) == 2
    assert {p.headers["x-line-retry-key"] for p in pushes} == {stored_key}
    assert len(line_server.deliveries) == 1
    # A lost answer: LINE accepted, we retry with the same key, LINE says 409 → sent, once.
    await pool.execute("update notify_messages set status = 'pending' where id = $1", mid)
    assert await deliver(pool, line, None, mid) == "sent"
    assert len(line_server.deliveries) == 1


def _body(events: list[dict[str, Any]]) -> bytes:
    return json.dumps({"destination": "Ubot", "events": events}).encode()


def _event(kind: str, user: str, event_id: str, redelivery: bool = False) -> dict[str, Any]:
    return {"type": kind, "timestamp": 1700000000000, "webhookEventId": event_id,
            "mode": "active", "source": {"type": "user", "userId": user},
            "deliveryContext": {"isRedelivery": redelivery}}


async def _opt_in(pool: asyncpg.Pool, member: int) -> bool | None:
    return await pool.fetchval(  # type: ignore[no-any-return]
        "select line_opt_in from notify_prefs where member_id = $1", member)


async def test_webhook_with_a_bad_signature_is_401_and_changes_nothing(
        http: httpx.AsyncClient, world: Any, pool: asyncpg.Pool) -> None:
    member, _ = await world.member()
    sub = await pool.fetchval("select line_sub from members where id = $1", member)
    event_id = f"01H{uuid.uuid4().hex}"
    body = _body([_event("unfollow", sub, event_id)])
    forged = compute_signature("not-the-channel-secret", body)
    for headers in ({"x-line-signature": forged}, {}):
        r = await http.post("/line/webhook", content=body, headers=headers)
        assert r.status_code == 401 and r.json()["code"] == "invalid_signature"
    assert await _opt_in(pool, member) is None
    assert await pool.fetchval("select count(*) from line_webhook_events"
                               " where webhook_event_id = $1", event_id) == 0


async def test_follow_unfollow_and_a_redelivered_event_has_no_second_effect(
        http: httpx.AsyncClient, world: Any, pool: asyncpg.Pool, settings: Settings) -> None:
    member, _ = await world.member()
    sub = await pool.fetchval("select line_sub from members where id = $1", member)

    async def send(events: list[dict[str, Any]]) -> httpx.Response:
        body = _body(events)
        sig = compute_signature(settings.line_channel_secret, body)
        return await http.post("/line/webhook", content=body, headers={"x-line-signature": sig})

    unfollow_id, follow_id = f"01U{uuid.uuid4().hex}", f"01F{uuid.uuid4().hex}"
    r = await send([_event("unfollow", sub, unfollow_id)])
    assert r.status_code == 200 and r.json()["handled"] == 1
    assert await _opt_in(pool, member) is False
    assert (await send([_event("follow", sub, follow_id)])).json()["handled"] == 1
    assert await _opt_in(pool, member) is True
    # LINE redelivers the old unfollow: already applied, so the later follow stands.
    r = await send([_event("unfollow", sub, unfollow_id, redelivery=True)])
    assert r.status_code == 200 and r.json()["handled"] == 0
    assert await _opt_in(pool, member) is True
