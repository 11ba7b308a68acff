"""One CLI: serve | worker | migrate | seed | token | check-ledger | verify-audit."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from kuekan.settings import get_settings


def _serve(args: argparse.Namespace) -> int:
    from kuekan.serve import serve

    return serve(args.host, args.port, args.workers, args.backlog)


def _worker(args: argparse.Namespace) -> int:
    import uvloop

    from kuekan.worker import health_check, run

    if args.health_check:
        return 0 if asyncio.run(health_check()) else 1
    # ARQ runs on whatever loop is current; on uvloop the worker's CPU per outbox row fell by
    # about a fifth in the event flood (2.7 -> 2.2 ms, docs/PERFORMANCE.md).
    return run(get_settings().redis_url, new_loop=uvloop.new_event_loop)


def _migrate(_: argparse.Namespace) -> int:
    from kuekan.db.migrate import migrate

    settings = get_settings()
    applied = asyncio.run(migrate(settings.migrations_database_url,
                                  app_url=settings.database_url))
    print(f"migrations applied: {', '.join(applied) or 'none (up to date)'}")
    return 0


def _seed(_: argparse.Namespace) -> int:
    from kuekan.seed import seed

    if get_settings().env == "prod":
        print("kuekan seed: demo data is for dev and test; refusing with KUEKAN_ENV=prod",
              file=sys.stderr)
        return 2

    print(asyncio.run(seed(get_settings())))
    return 0


async def _tokens(args: argparse.Namespace) -> list[str]:
    import asyncpg

    from kuekan.auth import repository as auth_repo
    from kuekan.auth.tokens import Principal, TokenService
    from kuekan.members import repository as members

    settings = get_settings()
    if settings.env == "prod":  # also refused in _token, before any settings are read
        raise SystemExit("the token CLI does not mint tokens in prod (KUEKAN_ENV=prod)")
    tokens = TokenService(settings)
    ttl = args.ttl_s
    conn = await asyncpg.connect(settings.database_url)
    try:
        if args.role == "member":
            subs = ([f"{args.line_sub_prefix}{i}" for i in range(args.count)]
                    if args.line_sub_prefix else [args.line_sub])
            ids: dict[str, int] = {}
            for start in range(0, len(subs), 5000):
                ids.update(await members.ensure_members(conn, subs[start:start + 5000]))
            return [tokens.issue(Principal("member", ids[s], s), ttl_s=ttl) for s in subs]
        if args.role == "merchant":
            sid = await members.ensure_staff(conn, args.line_sub, "merchant", args.merchant_id,
                                             None)
            ver = await auth_repo.reactivate_for_cli(conn, sid)
            return [tokens.issue(Principal("merchant", sid, args.line_sub,
                                           merchant_id=args.merchant_id, version=ver),
                                 ttl_s=ttl)]
        sid = await members.ensure_staff(conn, args.line_sub, "admin", None, args.org)
        ver = await auth_repo.reactivate_for_cli(conn, sid)
        return [tokens.issue(Principal("admin", sid, args.line_sub, org=args.org, version=ver),
                             ttl_s=ttl)]
    finally:
        await conn.close()


def _token(args: argparse.Namespace) -> int:
    if os.environ.get("KUEKAN_ENV", "dev") == "prod":
        # Production principals sign in with LINE (staff and admins by invitation).
        print("the token CLI does not mint tokens in prod (KUEKAN_ENV=prod)", file=sys.stderr)
        return 2
    if args.role == "member" and not (args.line_sub or args.line_sub_prefix):
        print("--line-sub or --line-sub-prefix is required for members", file=sys.stderr)
        return 2
    if args.role == "merchant" and (args.merchant_id is None or not args.line_sub):
        print("--merchant-id and --line-sub are required for merchant staff", file=sys.stderr)
        return 2
    if args.role == "admin" and (args.org is None or not args.line_sub):
        print("--org and --line-sub are required for admins", file=sys.stderr)
        return 2
    sys.stdout.write("\n".join(asyncio.run(_tokens(args))) + "\n")
    return 0


def _check_ledger(_: argparse.Namespace) -> int:
    import asyncpg

    from kuekan.ledger.check import check_ledger

    async def run() -> list[Any]:
        conn = await asyncpg.connect(get_settings().database_url)
        try:
            return await check_ledger(conn)
        finally:
            await conn.close()

    results = asyncio.run(run())
    for r in results:
        print(f"{'PASS' if r.ok else 'FAIL'}  {r.name}: {r.detail}")
    failed = [r for r in results if not r.ok]
    print(f"ledger: {len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kuekan", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the HTTP API")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=int(os.environ.get("KUEKAN_WEB_WORKERS", "1")))
    p.add_argument("--backlog", type=int, default=8192)
    p.set_defaults(fn=_serve)
    p = sub.add_parser("worker", help="run the ARQ worker (cron included)")
    p.add_argument("--health-check", action="store_true", help="exit 0 if a worker is alive")
    p.set_defaults(fn=_worker)
    sub.add_parser("migrate", help="apply pending SQL migrations").set_defaults(fn=_migrate)
    sub.add_parser("seed", help="load demo data (idempotent)").set_defaults(fn=_seed)
    p = sub.add_parser("token", help="print development JWTs (creates members/staff)")
    p.add_argument("--role", choices=["member", "merchant", "admin"], required=True)
    p.add_argument("--line-sub")
    p.add_argument("--line-sub-prefix")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--merchant-id", type=int)
    p.add_argument("--org", choices=["pao", "chamber"])
    p.add_argument("--ttl-s", type=int, default=None, help="token lifetime (default: setting)")
    p.set_defaults(fn=_token)
    sub.add_parser("check-ledger", help="verify the ledger invariants").set_defaults(
        fn=_check_ledger)
    for name, fn in EXTRA_COMMANDS.items():
        sub.add_parser(name, help=fn.__doc__).set_defaults(fn=fn)
    return parser


# Domains add commands here (e.g. verify-audit).
EXTRA_COMMANDS: dict[str, Any] = {}


def _verify_audit(args: argparse.Namespace) -> int:
    """verify the audit log's hash chain (exits 1 at the first broken link)"""
    from kuekan.audit.verify import verify_audit_command

    return verify_audit_command(args)


EXTRA_COMMANDS["verify-audit"] = _verify_audit


# Commands that run the service or change its schema: never with development secrets in prod.
GUARDED = frozenset({"serve", "worker", "migrate"})


def main(argv: list[str] | None = None) -> int:
    from kuekan.db.migrate import MigrationError
    from kuekan.kit.resources import ResourceMissingError
    from kuekan.settings import SettingsError, UnsafeSettingsError, require_safe

    args = build_parser().parse_args(argv)
    try:
        if args.command in GUARDED:
            require_safe(get_settings())
        return int(args.fn(args))
    except UnsafeSettingsError as exc:
        print(f"kuekan {args.command}: {exc}", file=sys.stderr)
        return 2
    except (MigrationError, ResourceMissingError, SettingsError) as exc:
        print(f"kuekan {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
