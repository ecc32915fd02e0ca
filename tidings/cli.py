"""The `tidings` command: serve, worker, migrate, partitions, token, keys."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence

from pydantic import ValidationError

from tidings import __version__
from tidings.config import logs
from tidings.config.settings import MIN_SECRET_BYTES, Settings, describe, load_settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        settings = load_settings()
    except ValidationError as exc:
        # A bad setting stops every command before it does anything, naming the variable.
        print(f"tidings: {describe(exc)}", file=sys.stderr)
        return 2
    logs.configure(settings)
    if settings.allow_short_jwt_secret and len(settings.jwt_secret.encode()) < MIN_SECRET_BYTES:
        logging.getLogger("tidings").warning(
            "JWT_SECRET is shorter than %d bytes (allowed by ALLOW_SHORT_JWT_SECRET): "
            "tokens can be forged by brute force; never run like this in production",
            MIN_SECRET_BYTES,
        )
    return int(args.handler(args, settings))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tidings", description="Self-hosted real-time notification service."
    )
    parser.add_argument("--version", action="version", version=f"tidings {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="run the HTTP API, Socket.IO and the delivery workers in one process",
        description="Run the HTTP API, Socket.IO (same port) and the delivery workers. "
        "On the embedded default (SQLite) the schema is migrated first.",
    )
    serve.add_argument("--host", help="listen address (overrides HOST; default localhost)")
    serve.add_argument("--port", type=int, help="port (overrides WEBSOCKET_PORT; default 3001)")
    serve.set_defaults(handler=_serve)

    worker = commands.add_parser(
        "worker", help="run the delivery workers only",
        description="Run the delivery workers only (for multi-process deployments).",
    )
    worker.set_defaults(handler=_worker)

    migrate = commands.add_parser(
        "migrate", help="bring the database schema up to date",
        description="Apply the Alembic migrations to DATABASE_URL (idempotent).",
    )
    migrate.set_defaults(handler=_migrate)

    partitions = commands.add_parser(
        "partitions", help="create monthly partitions ahead, apply retention",
        description="PostgreSQL keeps notifications, deliveries and attempts in monthly "
        "partitions. `ensure` creates the current and the next months' partitions "
        "(idempotent; nothing to do on SQLite); `prune` applies retention: idempotency keys "
        "older than 24 h, and with RETENTION_DAYS > 0 notifications older than that (whole "
        "partitions on PostgreSQL, batches on SQLite). Workers run both daily.",
    )
    actions = partitions.add_subparsers(dest="action", metavar="ACTION", required=True)
    ensure = actions.add_parser("ensure", help="create this month's and the next partitions")
    ensure.add_argument("--ahead", type=int, default=3,
                        help="months to create beyond the current one (3)")
    actions.add_parser("prune", help="drop what is older than the retention")
    partitions.set_defaults(handler=_partitions)

    token = commands.add_parser(
        "token", help="print a signed development token",
        description="Print a JWT signed with JWT_SECRET (HS256), for development and tests.",
    )
    token.add_argument("--sub", required=True, help="the user id (the token's `sub`)")
    token.add_argument("--roles", action="append", default=[],
                       help="role(s), comma-separated or repeated, e.g. service or admin")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (3600)")
    token.set_defaults(handler=_token)

    keys = commands.add_parser(
        "keys", help="encryption at rest: make a key, rotate onto the current key",
        description="Manage the keys that seal the parts producers mark sensitive.",
    )
    actions = keys.add_subparsers(dest="action", metavar="ACTION", required=True)
    generate = actions.add_parser(
        "generate", help="print a new random key entry for ENCRYPTION_KEYS",
        description="Print `id:base64key` with 32 random bytes, for ENCRYPTION_KEYS.",
    )
    generate.add_argument("--id", help="the key id (default: k<UTC yyyymmddhhmm>)")
    generate.set_defaults(handler=_keys_generate)
    rotate = actions.add_parser(
        "rotate", help="seal every stored sensitive value again under the current key",
        description="Re-encrypt every value sealed under an older key with the first key "
        "of ENCRYPTION_KEYS, in batches (one transaction each). Idempotent and resumable: "
        "safe to stop and run again, and beside running services. Exits 1 if some value "
        "could not be decrypted (keep its key until that is resolved).",
    )
    rotate.add_argument("--batch-size", type=int, default=500,
                        help="rows per transaction (500)")
    rotate.set_defaults(handler=_keys_rotate)
    return parser


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from tidings import server

    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    return _run_service(settings, lambda: server.run(settings, host, port))


def _worker(_args: argparse.Namespace, settings: Settings) -> int:
    from tidings import worker_process

    return _run_service(settings, lambda: asyncio.run(worker_process.run(settings)))


def _run_service(settings: Settings, run: Callable[[], None]) -> int:
    """What `serve` and `worker` share: a schema that is up to date (migrated here on the
    embedded SQLite default), then `run`; a provider configured wrongly names its setting."""
    from tidings.delivery.push.router import ConfigError
    from tidings.jobs import migrate

    if settings.is_sqlite:
        migrate.upgrade(settings.database_url)
    elif not asyncio.run(migrate.is_current(settings.database_url)):
        print("The database schema is not up to date: run `tidings migrate` first.",
              file=sys.stderr)
        return 1
    try:
        run()
    except ConfigError as exc:
        print(f"tidings: {exc}", file=sys.stderr)
        return 2
    return 0


def _migrate(_args: argparse.Namespace, settings: Settings) -> int:
    from tidings.jobs import migrate

    done = migrate.upgrade_to_head(settings.database_url)
    where = _redacted(settings.database_url)
    if done.applied == 0:
        print(f"Schema already up to date at {done.after} on {where}: nothing to apply")
    else:
        start = "an empty database" if done.before is None else done.before
        plural = "migration" if done.applied == 1 else "migrations"
        print(f"Migrated {where} from {start} to {done.after} ({done.applied} {plural} applied)")
    return 0


def _partitions(args: argparse.Namespace, settings: Settings) -> int:
    from tidings.domain.model import utcnow
    from tidings.jobs import maintenance
    from tidings.store.database import Database

    if args.action == "ensure" and not 0 <= args.ahead <= 120:
        print("--ahead must be between 0 and 120", file=sys.stderr)
        return 2

    async def run() -> str:
        db = Database(settings.database_url, pool_size=1)
        try:
            if args.action == "ensure":
                created = await maintenance.ensure_partitions(db, utcnow(), args.ahead)
                return f"Created {len(created)} partition(s): {' '.join(created) or '-'}"
            report = await maintenance.apply_retention(db, utcnow(), settings.retention_days)
            return (f"Dropped {len(report.partitions)} partition(s): "
                    f"{' '.join(report.partitions) or '-'}; deleted "
                    f"{report.notifications} notification(s) and "
                    f"{report.idempotency_keys} idempotency key(s)")
        finally:
            await db.dispose()

    print(asyncio.run(run()))
    return 0


def _token(args: argparse.Namespace, settings: Settings) -> int:
    from tidings.services.tokens import TokenService

    if args.ttl <= 0:
        print("--ttl must be positive", file=sys.stderr)
        return 2
    roles = [role.strip() for value in args.roles for role in value.split(",") if role.strip()]
    print(TokenService(settings).mint(args.sub, roles, args.ttl))
    return 0


def _keys_generate(args: argparse.Namespace, _settings: Settings) -> int:
    from tidings.crypto.keyring import generate_entry

    try:
        print(generate_entry(args.id))
    except ValueError as exc:
        print(f"--id: {exc}", file=sys.stderr)
        return 2
    return 0


def _keys_rotate(args: argparse.Namespace, settings: Settings) -> int:
    from tidings.crypto.cipher import FieldCipher
    from tidings.jobs import keys, migrate
    from tidings.store.database import Database

    keyring = settings.keyring()
    if keyring is None:
        print("No encryption keys are configured: set ENCRYPTION_KEYS (or "
              "ENCRYPTION_KEYS_FILE) with the new key first.", file=sys.stderr)
        return 2
    if args.batch_size <= 0:
        print("--batch-size must be positive", file=sys.stderr)
        return 2
    if not asyncio.run(migrate.is_current(settings.database_url)):
        print("The database schema is not up to date: run `tidings migrate` first.",
              file=sys.stderr)
        return 1

    async def run() -> keys.RotationReport:
        db = Database(settings.database_url, pool_size=1)
        try:
            return await keys.rotate(db, FieldCipher(keyring), args.batch_size)
        finally:
            await db.dispose()

    report = asyncio.run(run())
    print(f"Rotated onto key '{report.key_id}': rewrote {report.rewritten} value(s) in "
          f"{report.rows} row(s).")
    if report.unreadable:
        print(f"{report.unreadable} value(s) could not be decrypted with the configured keys "
              "and were left as they were (the log names their notifications): keep the "
              "old keys until this is resolved.", file=sys.stderr)
        return 1
    return 0


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
