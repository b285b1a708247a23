"""The `mailpreflight` command: serve, and in-process checks that need no server."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from checker import logs
from checker.app import create_app
from checker.auth import AuthService, Scope
from checker.cli_audit import AuditRequest, run_audit
from checker.credentials import load_master_key
from checker.encoding import ENCODER, dumps
from checker.models import DomainReport
from checker.names import DomainName, InvalidDomain, normalize_domain
from checker.policy import Method, Policy
from checker.preview import Preview, PreviewEngine
from checker.recipients import normalize_address
from checker.settings import Settings, SettingsError
from checker.store import Store
from checker.wiring import build_engine

EXIT_OK, EXIT_NOT_OK, EXIT_USAGE = 0, 1, 2

log = logging.getLogger(__name__)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]  # argparse's is NoReturn
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"mailpreflight: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mailpreflight", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the HTTP service (settings from CHECKER_* variables)")
    check = sub.add_parser("check", help="check domains in-process and print their reports")
    check.add_argument("domains", nargs="+", metavar="DOMAIN")
    check.add_argument("--json", action="store_true", help="one DomainReport JSON object a line")
    preview = sub.add_parser(
        "preview", help="how each recipient's message would travel (addresses, or stdin)"
    )
    preview.add_argument("addresses", nargs="*", metavar="ADDRESS")
    preview.add_argument("--policy", default=str(Policy.TLS_OR_FALLBACK), help="sender policy")
    preview.add_argument("--user", help="the sending user (their suppressions and keys)")
    preview.add_argument("--json", action="store_true", help="the preview as one JSON object")
    _add_keys_parser(sub)
    audit = sub.add_parser("audit", help="audit a recipient list (CSV: an email column)")
    audit.add_argument("file", type=Path, metavar="FILE.csv")
    audit.add_argument("--policy", default=str(Policy.TLS_OR_FALLBACK), help="sender policy")
    audit.add_argument("--user", help="the sending user (their suppressions and keys)")
    audit.add_argument("--out", type=Path, help="write results: results.csv or results.json")
    audit.add_argument(
        "--server", help="submit to a running service at this URL and follow the job there"
    )
    return parser


def _add_keys_parser(sub: Any) -> None:
    keys = sub.add_parser("keys", help="API credentials: create, list, revoke")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a credential; prints its secret once")
    create.add_argument("--scope", choices=[s.value for s in Scope], required=True)
    create.add_argument("--user", help="the user address a user-scope credential is bound to")
    create.add_argument("--name", help="a label for people")
    create.add_argument("--json", action="store_true", help="print one JSON object")
    listing = actions.add_parser("list", help="list credentials (never their secrets)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    revoke = actions.add_parser("revoke", help="revoke a credential and its codes")
    revoke.add_argument("token")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 not tls_ok, 2 bad input)."""
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as exc:
        print(f"mailpreflight: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logs.configure(settings.log_format, settings.log_level)
    if args.command == "serve":
        return _serve(settings)
    if args.command == "preview":
        return _preview(settings, args)
    if args.command == "keys":
        return asyncio.run(_keys(settings, args))
    if args.command == "audit":
        return _audit(settings, args)
    return _check(settings, args.domains, args.json)


def _serve(settings: Settings) -> int:
    try:
        new_loop = event_loop_factory(settings.event_loop)
    except SettingsError as exc:
        print(f"mailpreflight: {exc}", file=sys.stderr)
        return EXIT_USAGE
    app = create_app(settings)
    loop = new_loop()
    name = "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
    log.info("event loop %s, JSON encoder %s", name, ENCODER)
    # One access-log line per request costs ≈ 80 µs of CPU (bench.http --access-log).
    access_log = logging.getLogger("aiohttp.access") if settings.access_log else None
    web.run_app(
        app, host=settings.host, port=settings.port, print=None, loop=loop, access_log=access_log
    )
    return EXIT_OK


def event_loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """What makes `serve`'s loop: uvloop's when asked for or (auto) installed; else asyncio's.

    Raises SettingsError when `choice` is "uvloop" and uvloop is not installed.
    """
    if choice != "asyncio":
        try:
            import uvloop  # the optional `fast` extra
        except ImportError:
            if choice == "uvloop":
                raise SettingsError(
                    "CHECKER_EVENT_LOOP=uvloop, but uvloop is not installed "
                    "(pip install 'mailpreflight[fast]')"
                ) from None
        else:
            factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
            return factory
    return asyncio.new_event_loop


def _check(settings: Settings, raw: list[str], as_json: bool) -> int:
    names: list[DomainName] = []
    for text in raw:
        try:
            names.append(normalize_domain(text))
        except InvalidDomain as exc:
            print(f"mailpreflight: {text!r}: {exc}", file=sys.stderr)
            return EXIT_USAGE
    reports = asyncio.run(_check_all(settings, names))
    for report in reports:
        print(dumps(report.to_json()) if as_json else _text(report))
    return EXIT_OK if all(r.tls_ok for r in reports) else EXIT_NOT_OK


async def _check_all(settings: Settings, names: list[DomainName]) -> list[DomainReport]:
    engine = build_engine(settings)
    try:
        results = await asyncio.gather(*(engine.checker.check(n) for n in names))
    finally:
        await engine.checker.close()
    return [r for r in results if r is not None]


def _audit(settings: Settings, args: argparse.Namespace) -> int:
    try:
        policy = Policy(args.policy)
        user = normalize_address(args.user) if args.user is not None else None
    except ValueError as exc:
        print(f"mailpreflight: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not args.file.is_file():
        print(f"mailpreflight: {args.file}: no such file", file=sys.stderr)
        return EXIT_USAGE
    if args.out is not None and args.out.suffix.lower() not in (".csv", ".json"):
        print("mailpreflight: --out must name a .csv or .json file", file=sys.stderr)
        return EXIT_USAGE
    request = AuditRequest(args.file, policy, user, args.out, args.server)
    return asyncio.run(run_audit(settings, request))


def _preview(settings: Settings, args: argparse.Namespace) -> int:
    addresses: list[str] = args.addresses or [line for line in sys.stdin if line.strip()]
    try:
        policy = Policy(args.policy)
    except ValueError:
        names = ", ".join(p.value for p in Policy)
        print(f"mailpreflight: policy must be one of: {names}", file=sys.stderr)
        return EXIT_USAGE
    try:
        user = normalize_address(args.user) if args.user is not None else None
    except ValueError as exc:
        print(f"mailpreflight: --user must be an e-mail address: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not addresses:
        print("mailpreflight: no addresses given (arguments or stdin)", file=sys.stderr)
        return EXIT_USAGE
    result = asyncio.run(_preview_all(settings, addresses, policy, user))
    if args.json:
        print(dumps(result.to_json()))
    else:
        for r in result.results:
            d, level = r.decision, r.report.tls_level if r.report else "unknown"
            print(f"{r.recipient.input}: {d.method} ({d.reason}; tls {level})")
        print("summary: " + ", ".join(f"{k} {v}" for k, v in sorted(result.summary().items())))
    secure = {Method.TLS, Method.PGP, Method.SMIME, Method.ESCROW}
    return EXIT_OK if all(r.decision.method in secure for r in result.results) else EXIT_NOT_OK


async def _preview_all(
    settings: Settings, addresses: list[str], policy: Policy, user: str | None
) -> Preview:
    engine = build_engine(settings)
    store = Store(settings.db)
    await store.open()
    try:
        return await PreviewEngine(engine.checker, store).preview(addresses, policy, user, None)
    finally:
        await engine.checker.close()
        await store.close()


async def _keys(settings: Settings, args: argparse.Namespace) -> int:
    """`keys create|list|revoke`, straight on the database the service uses."""
    scope = Scope(args.scope) if args.action == "create" else None
    user = None
    if args.action == "create" and (scope is Scope.USER) != (args.user is not None):
        print("mailpreflight: --user goes with --scope user, and only with it", file=sys.stderr)
        return EXIT_USAGE
    if args.action == "create" and args.user is not None:
        try:
            user = normalize_address(args.user)
        except ValueError as exc:
            print(f"mailpreflight: --user: {exc}", file=sys.stderr)
            return EXIT_USAGE
    store = Store(settings.db)
    await store.open()
    try:
        auth = AuthService(store, load_master_key(settings.secret_key_file), settings.auth_code_ttl)
        return await _keys_action(auth, args, scope, user)
    finally:
        await store.close()


async def _keys_action(
    auth: AuthService, args: argparse.Namespace, scope: Scope | None, user: str | None
) -> int:
    if scope is not None:
        credential, secret = await auth.create_credential(scope, user, args.name)
        body = {**credential.to_json(), "secret": secret}
        if args.json:
            print(dumps(body))
        else:
            print(f"token:  {credential.token}\nsecret: {secret}\n(the secret is shown only now)")
        return EXIT_OK
    if args.action == "list":
        for c in await auth.list_credentials():
            if args.json:
                print(dumps(c.to_json()))
            else:
                state = f"revoked {c.revoked_at}" if c.revoked_at else "active"
                print(f"{c.token}  {c.scope}  {c.user or '-'}  {c.name or '-'}  {state}")
        return EXIT_OK
    if await auth.revoke_credential(args.token):
        print(f"revoked {args.token}")
        return EXIT_OK
    print(f"mailpreflight: no active credential {args.token}", file=sys.stderr)
    return EXIT_NOT_OK


def _text(report: DomainReport) -> str:
    verdict = "tls_ok" if report.tls_ok else "NOT tls_ok"
    lines = [f"{report.domain}: mail {report.mail}, tls {report.tls_level} ({verdict})"]
    lines += [f"  reason: {r}" for r in report.reasons]
    lines += [f"  warning: {w}" for w in report.warnings]
    for mx in report.mx:
        lines.append(f"  MX {mx.preference} {mx.host}: {mx.tls_level}")
        for a in mx.addresses:
            f = a.facts
            tls = f.tls_version or f.legacy_tls_version or "-"
            why = ", ".join(a.reasons) or "ok"
            lines.append(f"    {f.ip}: {f.status}, {tls}, {a.tls_level} ({why})")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
