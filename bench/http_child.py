"""The server process of bench.http: a bare hello-world app and the real app, on one loop.

Run by bench.http as `python -m bench.http_child stdlib|orjson|auto [--access-log]`, with the
CHECKER_* settings in its environment (CHECKER_EVENT_LOOP picks the loop the way `mailpreflight
serve` picks it). It prints `ready HELLO_PORT APP_PORT LOOP ENCODER` once both listen on
127.0.0.1, and stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys

from aiohttp import web


def main() -> None:
    """Serve until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("json", choices=["auto", "stdlib", "orjson"])
    parser.add_argument("--access-log", action="store_true", help="one log line a request")
    args = parser.parse_args()
    if args.json == "stdlib":
        sys.modules["orjson"] = None  # type: ignore[assignment]  # as if `fast` were not installed
    # Imported only now, so that the line above decides which encoder checker.encoding picks.
    from checker import encoding, logs
    from checker.app import create_app
    from checker.cli import event_loop_factory
    from checker.settings import Settings

    if args.json == "orjson" and encoding.ENCODER != "orjson":
        raise SystemExit("orjson is not installed: pip install '.[fast]'")
    settings = Settings.from_env(os.environ)
    if args.access_log:
        logs.configure(settings.log_format, "INFO")  # as `serve` does
    app = create_app(settings)
    with asyncio.Runner(loop_factory=event_loop_factory(settings.event_loop)) as runner:
        runner.run(_serve(app, args.access_log, encoding.ENCODER))


async def _hello(request: web.Request) -> web.Response:
    return web.Response(text="Hello, World!")


async def _serve(app: web.Application, access_log: bool, encoder: str) -> None:
    hello = web.Application()
    hello.router.add_get("/", _hello)
    runners, ports = [], []
    for each in (hello, app):
        # run_app's default access log writes a line a request; off unless asked for.
        runner = web.AppRunner(each) if access_log else web.AppRunner(each, access_log=None)
        await runner.setup()
        sock = socket.socket()  # bound here so its port is known; the site closes it
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(runner, sock).start()
        ports.append(sock.getsockname()[1])
        runners.append(runner)
    loop = asyncio.get_running_loop()
    name = "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print(f"ready {ports[0]} {ports[1]} {name} {encoder}", flush=True)
    await stop.wait()
    for runner in reversed(runners):
        await runner.cleanup()


if __name__ == "__main__":
    main()
