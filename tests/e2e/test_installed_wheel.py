"""The package as the container runs it: a wheel installed into a fresh virtualenv outside the
checkout, run from another folder with KUEKAN_ENV=prod, a schema owner for migrations and a
login role that owns nothing for the app. Nothing of the checkout (nor anything beside it) is
on the path: config, SQL and the Korat boundaries must come from the wheel itself.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from kuekan.db.migrate import with_database
from tests.conftest import REPO, _drop_database, _free_port, kill_group

APP_LOGIN = "kuekan_wheel_app"


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel from the checkout, install it (with its dependencies) into a new venv."""
    root = tmp_path_factory.mktemp("wheel")
    dist = root / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist),
                    str(REPO)], check=True, cwd=root, timeout=300)
    wheel = next(dist.glob("kuekan-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, timeout=120)
    subprocess.run([str(root / "venv/bin/python"), "-m", "pip", "install", "-q", str(wheel)],
                   check=True, cwd=root, timeout=600)
    return root / "venv"


@pytest.fixture
async def owner_dsn(database: str) -> Iterator[str]:
    dsn = with_database(database, f"kuekan_wheel_{uuid.uuid4().hex[:8]}")
    admin = await asyncpg.connect(with_database(database, "postgres"))
    try:
        if not await admin.fetchval("select 1 from pg_roles where rolname = $1", APP_LOGIN):
            await admin.execute(f"create role {APP_LOGIN} login")
    finally:
        await admin.close()
    yield dsn
    await _drop_database(dsn)


def _app_dsn(owner: str) -> str:
    user_host = owner.split("://", 1)[1].split("@", 1)[1]
    return f"postgresql://{APP_LOGIN}@{user_host}"


def _env(**extra: str) -> dict[str, str]:
    """The caller's environment without any KUEKAN_* or Python path of the checkout."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("KUEKAN_") and k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    return {**env, **extra}


def _run(venv: Path, cwd: Path, env: dict[str, str],
         *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv / "bin/python"), "-m", "kuekan", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=180, check=False)


async def _app_login_cannot_rewrite_the_audit_log(app_dsn: str) -> None:
    """The app's login owns nothing: the audit log's REVOKE and triggers bind it."""
    app = await asyncpg.connect(app_dsn)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await app.execute("update audit_log set actor = 'rewritten'")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await app.execute("alter table audit_log disable trigger all")
    finally:
        await app.close()


def test_installed_wheel_migrates_seeds_serves_awards_and_checks(
        venv: Path, owner_dsn: str, tmp_path: Path) -> None:
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    assert not (tmp_path / "shared").exists() and not (workdir.parent / "shared").exists()
    where = subprocess.run([str(venv / "bin/python"), "-c",
                            "import kuekan; print(kuekan.__file__)"],
                           cwd=workdir, env=_env(), capture_output=True, text=True, check=True)
    package = Path(where.stdout.strip()).parent
    assert package.is_relative_to(venv), where.stdout
    for path in package.rglob("*.py"):
        assert "../" + "shared" not in path.read_text(encoding="utf-8"), path

    redis_url = os.environ["KUEKAN_REDIS_URL"]
    key = secrets.token_hex(32)
    prod = _env(
        KUEKAN_ENV="prod", KUEKAN_DATABASE_URL=_app_dsn(owner_dsn),
        KUEKAN_MIGRATE_DATABASE_URL=owner_dsn, KUEKAN_REDIS_URL=redis_url,
        KUEKAN_JWT_KEYS=f"k1:{key}", KUEKAN_JWT_ACTIVE_KID="k1",
        KUEKAN_LINE_CHANNEL_SECRET=secrets.token_hex(16), KUEKAN_LINE_CHANNEL_ID="2009999999",
        KUEKAN_PRIVACY_PSEUDONYM_SALT=secrets.token_hex(32))
    # Demo data and development tokens are dev/test tools: run them as the owner in dev.
    dev = {**prod, "KUEKAN_ENV": "dev", "KUEKAN_DATABASE_URL": owner_dsn}

    migrated = _run(venv, workdir, prod, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "0001_ledger" in migrated.stdout and "functions/kk_award" in migrated.stdout
    seeded = _run(venv, workdir, dev, "seed")
    assert seeded.returncode == 0, seeded.stderr
    admin = _run(venv, workdir, dev, "token", "--role", "admin", "--org", "pao",
                 "--line-sub", "Uwheel-admin").stdout.strip()
    assert admin.count(".") == 2

    port = _free_port()
    server = subprocess.Popen(
        [str(venv / "bin/python"), "-m", "kuekan", "serve", "--port", str(port)], cwd=workdir,
        env=prod, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        ready = False
        while time.monotonic() < deadline and not ready and server.poll() is None:
            try:
                ready = httpx.get(f"{base}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                time.sleep(0.2)
        assert ready, server.stderr.read().decode() if server.poll() is not None else "not ready"
        award = httpx.post(
            f"{base}/api/v1/admin/awards", timeout=10,
            headers={"Authorization": f"Bearer {admin}", "Idempotency-Key": "wheel-1"},
            json={"member_id": 1, "points": 50, "funder_id": 1, "reason": "wheel test"})
        assert award.status_code == 201, award.text
        assert award.json()["balance"] >= 50
    finally:
        kill_group(server)

    checked = _run(venv, workdir, prod, "check-ledger")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert " 0 failed" in checked.stdout

    asyncio.run(_app_login_cannot_rewrite_the_audit_log(_app_dsn(owner_dsn)))

    unsafe = _run(venv, workdir, {**prod, "KUEKAN_JWT_KEYS": "dev1:short"}, "serve")
    assert unsafe.returncode == 2
    assert "refusing to run with KUEKAN_ENV=prod" in unsafe.stderr


def test_installed_wheel_refuses_an_empty_migration_folder(venv: Path, tmp_path: Path) -> None:
    empty = tmp_path / "no-sql"
    empty.mkdir()
    out = _run(venv, tmp_path, _env(KUEKAN_MIGRATIONS_DIR=str(empty)), "migrate")
    assert out.returncode == 1
    assert "not found in" in out.stderr and "KUEKAN_MIGRATIONS_DIR" in out.stderr
    assert "Traceback" not in out.stderr
