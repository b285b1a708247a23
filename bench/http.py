"""HTTP benchmark: cached `GET /v1/domains/{d}` against a bare aiohttp hello-world, and preview.

Run: `.venv/bin/python -m bench.http` (options: --compare, --loop, --json, --duration, --rounds).

This process starts the hermetic test world (tests/world.py: DNS and SMTP on 127.0.0.x, in a
thread) and drives the load. Each server configuration is a child process (bench/http_child.py)
serving, on one event loop, a bare aiohttp hello-world app and the real app from `create_app`
(auth off, no rate limit, DNS answers kept an hour so nothing expires mid-run). The load comes
from `wrk` when it is installed (`apt-get install wrk`), else from bench/loadgen.py's client
process: never from the loop under test. On two or more CPUs the servers are pinned to the
first and the load to the second. Hello-world and app runs alternate round by round (order
reversed every other round) so the machine's noise falls on both: the ratios are the figures,
the raw numbers only context. `--compare` serves the asyncio/uvloop × stdlib/orjson matrix side
by side, interleaved the same way, plus the baseline a second time (the noise floor), and
prints what uvloop and orjson each bought.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import aiohttp

from bench.http_report import DOMAIN, Config, Figures, report
from bench.loadgen import Load, have_wrk, run_load
from tests.world import World, WorldServers

# Twenty domains the world answers at once, for good, with every outcome the grader knows.
PREVIEW_DOMAINS = (
    "good.test", "shared.test", "nostarttls.test", "selfsigned.test", "expired.test",
    "wrongname.test", "tls10.test", "starttls454.test", "refused.test", "greet421.test",
    "greet554.test", "ehlo500.test", "onerefused.test", "mixed.test", "nullmx.test",
    "nullmixed.test", "implicit.test", "cname.test", "bücher.test", "halfdangling.test",
)  # fmt: skip
_TICK = os.sysconf("SC_CLK_TCK")


class Server:
    """One configuration's child process, serving hello-world and the app."""

    def __init__(self, config: Config, process: asyncio.subprocess.Process, line: str) -> None:
        self.config = config
        self.process = process
        _, hello, app, self.loop_name, self.encoder = line.split()
        self.hello = f"http://127.0.0.1:{hello}/"
        self.base = f"http://127.0.0.1:{app}"
        self.figures = Figures()

    @classmethod
    async def start(
        cls, config: Config, world: World, tmp: Path, args: argparse.Namespace
    ) -> Server:
        """Spawn the child and wait for its `ready` line."""
        env = world.env(
            CHECKER_RATE_LIMIT="0",
            CHECKER_MAX_CONCURRENT_CHECKS="10000",
            CHECKER_DNS_MIN_TTL="3600",
            CHECKER_DB=str(tmp / f"{config.label}.db"),
            CHECKER_SECRET_KEY_FILE=str(tmp / "secret.key"),
            CHECKER_EVENT_LOOP=config.loop,
        )
        child = ["-m", "bench.http_child", config.json] + ["--access-log"] * args.access_log
        log = tmp / f"{config.label}.log"
        with log.open("wb") as err:
            process = await asyncio.create_subprocess_exec(
                sys.executable, *child, env={**os.environ, **env},
                stdout=asyncio.subprocess.PIPE, stderr=err,
            )  # fmt: skip
        if args.server_cpus is not None:
            os.sched_setaffinity(process.pid, args.server_cpus)
        assert process.stdout is not None
        async with asyncio.timeout(60):
            line = (await process.stdout.readline()).decode()
        if not line.startswith("ready "):
            await process.wait()
            raise RuntimeError(f"{config.label} did not start:\n{log.read_text()[-2000:]}")
        return cls(config, process, line)

    def cpu_seconds(self) -> float:
        """User and system CPU time of the child so far (Linux /proc)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK

    async def stop(self) -> None:
        """SIGTERM, then wait for it to go."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):
                await self.process.wait()


async def _warm(http: aiohttp.ClientSession, server: Server) -> None:
    """Check every domain once, then prove each answer now comes from the cache."""
    urls = [f"{server.base}/v1/domains/{d}?wait=10" for d in PREVIEW_DOMAINS]
    for attempt in ("check", "cached"):
        bodies = await asyncio.gather(*(_get_json(http, u) for u in urls))
        pending = [b.get("domain") for b in bodies if b.get("status") == "pending"]
        if pending:
            raise RuntimeError(f"not checked within 10 s: {pending}")
        if attempt == "cached" and not all(b["cached"] for b in bodies):
            raise RuntimeError("a warmed domain did not come from the cache")


async def _get_json(http: aiohttp.ClientSession, url: str) -> dict[str, object]:
    async with http.get(url) as response:
        body: dict[str, object] = await response.json()
        return body


async def _round(
    http: aiohttp.ClientSession, servers: list[Server], n: int, args: argparse.Namespace
) -> None:
    """Round `n`: every server's hello-world, then every app, under load; then one at a time.

    Runs that are compared sit next to each other in time, and every other round goes in the
    opposite order, so that a machine that drifts favours no side.
    """
    order = servers if n % 2 == 0 else servers[::-1]
    for kind in ("hello", "app") if n % 2 == 0 else ("app", "hello"):
        for server in order:
            await _load(server, kind, args)
    for server in order:
        url = f"{server.base}/v1/domains/{DOMAIN}"
        server.figures.get_ms.append(await _sequential(http, "GET", url, args.n))
        url = f"{server.base}/v1/preview"
        server.figures.preview_ms.append(await _sequential(http, "POST", url, args.n, _PREVIEW))


async def _load(server: Server, kind: str, args: argparse.Namespace) -> None:
    f = server.figures
    target = server.hello if kind == "hello" else f"{server.base}/v1/domains/{DOMAIN}"
    before = server.cpu_seconds()
    result = await run_load(target, args.load)
    spent = server.cpu_seconds() - before
    if result.errors:
        raise RuntimeError(f"{target}: {result.errors} errors under load")
    (f.hello if kind == "hello" else f.app).append(result)
    cpu = spent / max(result.requests, 1) * 1e6
    (f.hello_cpu_us if kind == "hello" else f.app_cpu_us).append(cpu)


_PREVIEW = {"recipients": [f"user{n}@{PREVIEW_DOMAINS[n % 20]}" for n in range(100)]}


async def _sequential(
    http: aiohttp.ClientSession, method: str, url: str, n: int, body: object = None
) -> list[float]:
    """Milliseconds of each of `n` requests sent one after the other on one connection."""
    took = []
    for _ in range(n):
        started = time.perf_counter()
        async with http.request(method, url, json=body) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"{method} {url}: {response.status}")
        took.append((time.perf_counter() - started) * 1000)
    return took


async def _measure(args: argparse.Namespace, configs: list[Config], world: World) -> list[Server]:
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
        servers = []
        try:
            for config in configs:
                servers.append(await Server.start(config, world, Path(tmp), args))
            async with aiohttp.ClientSession() as http:
                for server in servers:
                    await _warm(http, server)
                    settle = replace(args.load, duration=1.0)
                    for url in (server.hello, f"{server.base}/v1/domains/{DOMAIN}"):
                        await run_load(url, settle)
                for n in range(args.rounds):
                    await _round(http, servers, n, args)
                args.bodies = [
                    await _get_json(http, f"{servers[0].base}/v1/domains/{DOMAIN}"),
                    await _post_json(http, f"{servers[0].base}/v1/preview", _PREVIEW),
                ]
        finally:
            for server in servers:
                await server.stop()
    return servers


async def _post_json(http: aiohttp.ClientSession, url: str, body: object) -> dict[str, object]:
    async with http.post(url, json=body) as response:
        answer: dict[str, object] = await response.json()
        return answer


def _configs(args: argparse.Namespace) -> list[Config]:
    if not args.compare:
        return [Config(args.loop, args.json)]
    found = {m: _importable(m) for m in ("uvloop", "orjson")}
    missing = [m for m, ok in found.items() if not ok]
    if missing:
        print(f"not installed, left out: {', '.join(missing)} (pip install '.[fast]')")
    loops = ["asyncio"] + ["uvloop"] * found["uvloop"]
    encoders = ["stdlib"] + ["orjson"] * found["orjson"]
    matrix = [Config(loop, enc) for enc in encoders for loop in loops]
    # The baseline a second time, measured like the others: what "no difference" looks like.
    return [*matrix, Config("asyncio", "stdlib", control=True)]


def _importable(module: str) -> bool:
    probe = [sys.executable, "-c", f"import {module}"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0  # noqa: S603


def main() -> None:
    """Parse options, start the world and the servers, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loop", choices=["auto", "asyncio", "uvloop"], default="auto")
    parser.add_argument("--json", choices=["auto", "stdlib", "orjson"], default="auto")
    parser.add_argument("--compare", action="store_true", help="the loop × JSON matrix")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=float, default=1.0, help="seconds per load run")
    parser.add_argument("--rounds", type=int, help="load runs per target (8; --compare: 6)")
    parser.add_argument("--n", type=int, default=40, help="one-at-a-time requests per round")
    parser.add_argument("--client", choices=["wrk", "python"], default=None)
    parser.add_argument("--access-log", action="store_true", help="log each request, as serve")
    parser.add_argument("--no-pin", action="store_true", help="let the scheduler place processes")
    args = parser.parse_args()
    args.rounds = args.rounds or (6 if args.compare else 8)
    cpus = sorted(os.sched_getaffinity(0))
    pin = not args.no_pin and len(cpus) >= 2
    args.server_cpus = frozenset(cpus[:1]) if pin else None
    load_cpus = frozenset(cpus[1:2]) if pin else None
    if load_cpus is not None:
        os.sched_setaffinity(0, load_cpus)  # this process drives the one-at-a-time requests
    client = args.client or ("wrk" if have_wrk() else "python")
    args.load = Load(client, args.connections, args.duration, load_cpus)
    configs = _configs(args)
    servers = WorldServers()
    try:
        measured = asyncio.run(_measure(args, configs, servers.world))
    finally:
        servers.close()
    placed = f"servers on CPU {cpus[0]}, load on CPU {cpus[1]}" if pin else "unpinned"
    header = (
        f"load: {client}, {args.connections} connections, {placed}; {args.rounds} rounds × "
        f"{args.duration:g} s per target; one at a time: {args.rounds * args.n} "
        f"requests; preview: 100 recipients over {len(PREVIEW_DOMAINS)} cached domains"
    )
    report(header, measured, args.bodies)


if __name__ == "__main__":
    main()
