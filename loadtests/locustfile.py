"""KueKan load scenarios (Locust, FastHttpUser). Normally started by ``loadtests/run.py``.

Scenario = the environment variable KUEKAN_SCENARIO (event_flood | event_knee | merchant_peak |
mixed_day);
it picks the LoadTestShape and the user classes. Fixtures (prepared before the run, never minted
during it) come from the directory KUEKAN_LOAD_DIR:

* ``member_tokens.txt``   one member JWT per line (``python -m kuekan token --role member
  --line-sub-prefix Uload- --count N``)
* ``merchant_tokens.txt`` "merchant_id<TAB>JWT" per line, one per simulated shop staff
* ``fixtures.json``       {"mission_id", "inside": [[lat, lon], ...], "reward_ids": [...],
  "reward_merchants": {reward_id: [merchant ids where its coupon is accepted]}}

Failures are labelled so the runner can split them: ``refusal <status> <code>`` for intended
business refusals (409/403 with a problem code), ``error ...`` for everything else (5xx,
timeouts, connection errors, unexpected statuses).
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import random
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import gevent
import locust.argument_parser
import locust.runners
from locust import LoadTestShape, between, events, task
from locust.contrib.fasthttp import FastHttpUser

# A worker whose event loop is busy for 3 s (the default liveness) is declared missing, and when
# the last one is, the master ends the test early. On a 2-core box shared with the service a
# spawning worker can lag that long; 30 s keeps the run going and still catches a dead worker.
locust.runners.HEARTBEAT_LIVENESS = 30
# Locust 2.4x workers rebuild the whole argument parser once per option key of every spawn
# message (runners.WorkerRunner.handle_message calls argument_parser.default_args_dict() inside
# a dict comprehension): about 100 parser builds a second, which py-spy showed as 75 % of each
# worker's CPU during a ramp. The defaults never change within a process, so build them once.
locust.argument_parser.default_args_dict = functools.cache(locust.argument_parser.default_args_dict)
# Runner.user_classes_count walks every user greenlet, and a worker asks for it several times a
# second (each spawn message, heartbeat and stats report): 19 % of a worker's CPU at 3,300 users.
# Each scenario leaves only its own user classes concrete (``abstract`` below), so with one class
# the count is the size of the greenlet group (finished users leave the group).
_user_classes_count = locust.runners.Runner.user_classes_count


def _fast_user_classes_count(self: Any) -> dict[str, int]:
    if len(self.user_classes) == 1:
        return {self.user_classes[0].__name__: len(self.user_greenlets)}
    counted: dict[str, int] = _user_classes_count.fget(self)
    return counted


locust.runners.Runner.user_classes_count = property(_fast_user_classes_count)

SCENARIO = os.environ.get("KUEKAN_SCENARIO", "event_flood")
LOAD_DIR = Path(os.environ.get("KUEKAN_LOAD_DIR", Path(__file__).parent / "reports" / "fixtures"))
DURATION_S = int(os.environ.get("KUEKAN_DURATION_S", "300"))
PEAK_USERS = int(os.environ.get("KUEKAN_PEAK_USERS", "10000"))
RAMP_S = int(os.environ.get("KUEKAN_RAMP_S", "120"))
REDEEM_SHARE = float(os.environ.get("KUEKAN_REDEEM_SHARE", "0.1"))
API = "/api/v1"


def _lines(name: str) -> list[str]:
    p = LOAD_DIR / name
    return [ln.strip() for ln in p.read_text().splitlines() if ln.strip()] if p.exists() else []


MEMBER_TOKENS = _lines("member_tokens.txt")
# "merchant_id<TAB>token" per line (a bare token is accepted too).
MERCHANT_TOKENS = [(int(ln.split("\t")[0]), ln.split("\t")[1]) if "\t" in ln else (0, ln)
                   for ln in _lines("merchant_tokens.txt")]
FIXTURES: dict[str, Any] = (json.loads((LOAD_DIR / "fixtures.json").read_text())
                            if (LOAD_DIR / "fixtures.json").exists() else {})

# Each Locust worker process takes a disjoint slice of the member tokens, so every simulated
# member is a distinct account (one check-in each) across processes.
_slot_lock = threading.Lock()
_slots: itertools.count[int] | None = None
_runner: Any = None


@events.init.add_listener
def _init(environment: Any, **_: Any) -> None:
    global _runner  # noqa: PLW0603 - set once per Locust process
    _runner = environment.runner


def next_member_token() -> str:
    """Worker k of P takes tokens k, k+P, k+2P, ...: no two simulated users share a member."""
    global _slots  # noqa: PLW0603 - built lazily, once per process
    with _slot_lock:
        if _slots is None:
            index = int(getattr(_runner, "worker_index", 0) or 0)
            procs = max(1, int(os.environ.get("KUEKAN_LOCUST_PROCESSES", "1")))
            _slots = itertools.count(index, procs)
        i = next(_slots)
    return MEMBER_TOKENS[i % len(MEMBER_TOKENS)]


def classify(resp: Any, ok: tuple[int, ...]) -> None:
    """Mark a catch_response response: success, intended refusal, or real error."""
    status = resp.status_code
    if status in ok:
        resp.success()
        return
    if status in (403, 409):
        try:
            code = json.loads(resp.text or "{}").get("code", "?")
        except ValueError:
            code = "?"
        resp.failure(f"refusal {status} {code}")
        return
    if status == 0:
        resp.failure(f"error connection {type(resp.error).__name__ if resp.error else ''}")
        return
    resp.failure(f"error {status}")


class KueKanUser(FastHttpUser):
    abstract = True
    network_timeout = 60.0
    connection_timeout = 60.0
    # Keep-alive connections, one per simulated user (as a phone on event Wi-Fi would).
    concurrency = 1
    insecure = True

    def auth(self, token: str, key: str | None = None) -> dict[str, str]:
        h = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        if key:
            h["Idempotency-Key"] = key
        return h

    def post_idem(self, path: str, token: str, body: dict[str, Any], name: str,
                  ok: tuple[int, ...] = (200, 201), attempts: int = 3) -> dict[str, Any] | None:
        """POST with an Idempotency-Key; transport errors and 503 are retried with the same key."""
        key = uuid.uuid4().hex
        out = None
        for _ in range(attempts):
            with self.client.post(path, data=json.dumps(body), headers=self.auth(token, key),
                                  name=name, catch_response=True) as resp:
                classify(resp, ok)
                if resp.status_code in ok:
                    try:
                        out = json.loads(resp.text)
                    except ValueError:
                        out = {}
                    return out
                if resp.status_code not in (0, 503) and not (
                        resp.status_code == 409 and "in_flight" in (resp.text or "")):
                    return None
        return None

    def get(self, path: str, token: str, name: str, *, parse: bool = False) -> Any:
        """GET; the body is parsed only when the caller uses it (``parse``), so the load
        generator spends its CPU on requests, not on decoding pages it throws away."""
        with self.client.get(path, headers=self.auth(token), name=name,
                             catch_response=True) as resp:
            classify(resp, (200,))
            if resp.status_code == 200 and parse:
                try:
                    return json.loads(resp.text)
                except ValueError:
                    return None
        return None


def reward_ids(user: KueKanUser, token: str) -> list[int]:
    ids = list(FIXTURES.get("reward_ids") or [])
    if ids:
        return ids
    data = user.get(f"{API}/rewards", token, "GET /rewards", parse=True)
    items = data.get("items", []) if isinstance(data, dict) else (data or [])
    return [it["id"] for it in items if isinstance(it, dict) and "id" in it]


# Locust dispatches new users once a second; run.py --arrivals burst sets 0 (all at once).
ARRIVAL_SPREAD_S = float(os.environ.get("KUEKAN_ARRIVAL_SPREAD_S", "1.0"))


EVENT_SCENARIOS = ("event_flood", "event_knee")
# The event crowd's think time between two looks at the phone (seconds).
THINK_S = (float(os.environ.get("KUEKAN_THINK_MIN_S", "5")),
           float(os.environ.get("KUEKAN_THINK_MAX_S", "15")))


class EventGoer(KueKanUser):
    """Korat Creative Splash: arrives, checks in once inside the event fence, looks at the
    pocket; then keeps the site open, refreshing the pocket every 5-15 s and now and then the
    reward catalogue (some redeem on arrival)."""

    abstract = SCENARIO not in EVENT_SCENARIOS  # only the scenario's own users are concrete

    wait_time = between(*THINK_S)

    def on_start(self) -> None:
        # Locust dispatches a second's worth of new users in one batch and starts them all at
        # once; real arrivals are spread over that second. Spread each start uniformly over
        # the dispatch interval so the offered rate is the same but not synchronised.
        gevent.sleep(random.uniform(0.0, ARRIVAL_SPREAD_S))
        self.token = next_member_token()
        lat, lon = random.choice(FIXTURES.get("inside") or [[14.97, 102.10]])
        body = {"mission_id": FIXTURES.get("mission_id"), "lat": lat, "lon": lon,
                "accuracy_m": random.choice([5, 8, 10, 15, 20]),
                "device_id": f"dev-{uuid.uuid4().hex[:12]}"}
        self.post_idem(f"{API}/checkins", self.token, body, "POST /checkins")
        self.get(f"{API}/me/pocket", self.token, "GET /me/pocket")
        if random.random() < REDEEM_SHARE:
            ids = reward_ids(self, self.token)
            if ids:
                self.post_idem(f"{API}/redemptions", self.token,
                               {"reward_id": random.choice(ids)}, "POST /redemptions")

    @task(4)
    def pocket(self) -> None:
        self.get(f"{API}/me/pocket", self.token, "GET /me/pocket")

    @task(1)
    def rewards(self) -> None:
        self.get(f"{API}/rewards", self.token, "GET /rewards")


class MerchantStaff(KueKanUser):
    """Evening peak at a partner shop: a customer shows the member QR; the staff scans it with a
    purchase amount (award), or the customer redeems a coupon at the till."""

    abstract = SCENARIO not in ("merchant_peak", "mixed_day")  # used by these scenarios only

    weight = 1

    wait_time = between(2, 8)

    def on_start(self) -> None:
        self.merchant_id, self.merchant_token = (random.choice(MERCHANT_TOKENS)
                                                 if MERCHANT_TOKENS else (0, ""))
        self.coupons: list[tuple[str, str]] = []
        # Rewards whose coupons this shop takes: its customers redeem those at the till.
        where = FIXTURES.get("reward_merchants") or {}
        self.rewards_here = [int(r) for r, mids in where.items() if self.merchant_id in mids]

    def member_qr(self, member_token: str) -> str | None:
        data = self.get(f"{API}/me/qr", member_token, "GET /me/qr", parse=True)
        return data.get("token") if isinstance(data, dict) else None

    @task(8)
    def scan_purchase(self) -> None:
        member = next_member_token()
        qr = self.member_qr(member)
        if qr is None:
            return
        self.post_idem(f"{API}/merchant/scans", self.merchant_token,
                       {"member_token": qr, "purchase_thb": random.choice([60, 120, 250, 480])},
                       "POST /merchant/scans (award)")
        if random.random() < REDEEM_SHARE:
            ids = self.rewards_here
            if ids:
                red = self.post_idem(f"{API}/redemptions", member,
                                     {"reward_id": random.choice(ids)}, "POST /redemptions")
                if red and red.get("coupon_code"):
                    self.coupons.append((member, red["coupon_code"]))

    @task(2)
    def scan_coupon(self) -> None:
        if not self.coupons:
            return
        member, code = self.coupons.pop(0)
        qr = self.member_qr(member)
        if qr is None:
            return
        self.post_idem(f"{API}/merchant/scans", self.merchant_token,
                       {"member_token": qr, "coupon_code": code}, "POST /merchant/scans (redeem)")


class DayMember(KueKanUser):
    """An ordinary day: members open the LIFF app, look at missions, pocket and rewards, and
    sometimes check in at an attraction."""

    abstract = SCENARIO != "mixed_day"  # only the scenario's own users are concrete

    weight = 10

    wait_time = between(5, 20)

    def on_start(self) -> None:
        self.token = next_member_token()

    @task(4)
    def pocket(self) -> None:
        self.get(f"{API}/me/pocket", self.token, "GET /me/pocket")

    @task(3)
    def missions(self) -> None:
        lat, lon = random.choice(FIXTURES.get("inside") or [[14.97, 102.10]])
        self.get(f"{API}/missions?lat={lat}&lon={lon}", self.token, "GET /missions")

    @task(2)
    def rewards(self) -> None:
        self.get(f"{API}/rewards", self.token, "GET /rewards")

    @task(1)
    def checkin(self) -> None:
        lat, lon = random.choice(FIXTURES.get("inside") or [[14.97, 102.10]])
        self.post_idem(f"{API}/checkins", self.token,
                       {"mission_id": FIXTURES.get("mission_id"), "lat": lat, "lon": lon,
                        "accuracy_m": 10}, "POST /checkins")


class _Shape(LoadTestShape):
    abstract = True
    stages: list[tuple[int, int, float, list[type]]] = []  # (until_s, users, rate, classes)

    def tick(self) -> tuple[int, float, list[type]] | None:
        t = self.get_run_time()
        if t >= DURATION_S:
            return None
        for until, users, rate, classes in self.stages:
            if t < until:
                return users, rate, classes
        _, users, rate, classes = self.stages[-1]
        return users, rate, classes


# Event-goers arriving per second (run.py --rate): the gate opens and the crowd walks in.
ARRIVAL_RATE = float(os.environ.get("KUEKAN_ARRIVAL_RATE", "100"))


class EventFloodShape(_Shape):
    """PEAK_USERS (10,000) event-goers arriving at ARRIVAL_RATE a second (100: all in within
    100 s), each checking in once, then staying and refreshing; hold until the end."""

    abstract = SCENARIO != "event_flood"
    stages = [(DURATION_S, PEAK_USERS, ARRIVAL_RATE, [EventGoer])]


# The knee finder: a stepped ramp of event-goers, each step held KNEE_STEP_S seconds.
KNEE_STEPS = [int(x) for x in os.environ.get("KUEKAN_KNEE_STEPS", "2000").split(",")]
KNEE_STEP_S = int(os.environ.get("KUEKAN_KNEE_STEP_S", "60"))


class EventKneeShape(_Shape):
    """Steps of KNEE_STEPS users (arriving at ARRIVAL_RATE a second), KNEE_STEP_S each."""

    abstract = SCENARIO != "event_knee"
    stages = [((i + 1) * KNEE_STEP_S, users, ARRIVAL_RATE, [EventGoer])
              for i, users in enumerate(KNEE_STEPS)]


# Per-step latency histograms for the knee finder, kept in each Locust process and written at
# exit (run.py merges them): bucket = whole milliseconds, step = by wall clock from KNEE_T0.
_knee_hist: dict[tuple[int, str, int], int] = {}
_knee_counts: dict[tuple[int, str], int] = {}
KNEE_T0 = float(os.environ.get("KUEKAN_KNEE_T0", "0"))


@events.request.add_listener
def _knee_record(name: str, response_time: float, exception: Any, **_: Any) -> None:
    if SCENARIO != "event_knee" or not KNEE_T0:
        return
    step = int((time.time() - KNEE_T0) // KNEE_STEP_S)
    # The first third of a step is the transition from the last: not measured.
    if (time.time() - KNEE_T0) - step * KNEE_STEP_S < KNEE_STEP_S / 3:
        return
    key = (step, name, int(response_time))
    _knee_hist[key] = _knee_hist.get(key, 0) + 1
    if exception is not None and not str(exception).startswith("refusal"):
        # Real errors only: an intended business refusal (409/403 with a code) is an answer.
        _knee_counts[(step, name)] = _knee_counts.get((step, name), 0) + 1


@events.quitting.add_listener
def _knee_dump(**_: Any) -> None:
    out = os.environ.get("KUEKAN_KNEE_OUT")
    if SCENARIO != "event_knee" or not out or not _knee_hist:
        return
    Path(out).mkdir(parents=True, exist_ok=True)
    rows = [[step, name, ms, n] for (step, name, ms), n in _knee_hist.items()]
    fails = [[step, name, n] for (step, name), n in _knee_counts.items()]
    (Path(out) / f"knee-{os.getpid()}.json").write_text(json.dumps({"hist": rows,
                                                                   "fails": fails}))


class MerchantPeakShape(_Shape):
    """18:00-20:00 at 500 shops, compressed: ramp to 500 staff in 60 s, then hold."""

    abstract = SCENARIO != "merchant_peak"
    users = int(os.environ.get("KUEKAN_MERCHANTS", "500"))
    stages = [(DURATION_S, users, max(1.0, users / 60), [MerchantStaff])]


class MixedDayShape(_Shape):
    """An ordinary day, two waves (lunch, evening): members browsing and checking in, shops
    scanning (10:1 by class weight); peak = KUEKAN_PEAK_USERS (runner default 2,200)."""

    abstract = SCENARIO != "mixed_day"
    stages = [(DURATION_S // 2, int(PEAK_USERS * 0.7), 50.0, [DayMember, MerchantStaff]),
              (DURATION_S, PEAK_USERS, 50.0, [DayMember, MerchantStaff])]
