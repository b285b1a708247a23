"""Memory benchmark: bytes of Python heap per cached domain, against the size of its JSON.

Run: `.venv/bin/python -m bench.memory` (options: --domains, --mx).

bench/audit.py's servers (DNS, and SMTP with STARTTLS, no added delay) run in a child process, so
that nothing they allocate is counted. This process fills a real DomainChecker through its public
`check()`: N domains over M MX hosts, so the caches hold what they hold in service: a report per
domain, an MX answer per domain, A/AAAA answers and probe facts per MX host (shared). Python's
tracemalloc measures the heap before and after (each after a full garbage collection); the
difference divided by N is the figure, printed beside the size of one report's JSON for scale.
A first engine, thrown away, warms module-level state (imports, codecs) so it is not counted; a
second fills without tracemalloc (whose own bookkeeping would swell the process) to give the
growth of the resident set per domain, which adds the allocator's overhead and free lists.
Each fill uses names no other fill used. Defaults: 10,000 domains over 100 MX hosts (the ratio
of 20,000 over 200, in half the time: tracemalloc makes the fill some four times slower).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from checker.encoding import dumps
from checker.names import normalize_domain
from checker.settings import Settings
from checker.wiring import Engine, build_engine


def _settings(ready: str, tmp: Path, domains: int) -> Settings:
    _, dns_port, smtp_port, ca_file = ready.split()
    return Settings.from_env(
        {
            "CHECKER_NAMESERVERS": f"127.0.0.1:{dns_port}",
            "CHECKER_SMTP_PORT": smtp_port,
            "CHECKER_CA_FILE": ca_file,
            "CHECKER_ALLOW_NETWORKS": "127.0.1.0/24",
            "CHECKER_ALLOW_SPECIAL_USE": "test",
            "CHECKER_HELO_NAME": "bench.mailpreflight.test",
            "CHECKER_DB": str(tmp / "memory.db"),
            "CHECKER_CACHE_SIZE": str(2 * domains + 1000),
            "CHECKER_DNS_MIN_TTL": "3600",  # nothing expires while the caches fill
        }
    )


async def _fill(engine: Engine, names: range, concurrency: int = 64) -> None:
    """Check d{n}.bench.test for every n, at most `concurrency` at a time."""
    slots = asyncio.Semaphore(concurrency)

    async def one(n: int) -> None:
        async with slots:
            report = await engine.checker.check(normalize_domain(f"d{n}.bench.test"))
        assert report is not None
        assert report.tls_level == "verified", report

    await asyncio.gather(*(one(n) for n in names))


async def _measure(settings: Settings, domains: int, mx: int) -> None:
    warm = build_engine(settings)
    # Three sets of names, so that no fill finds the names of another in any cache.
    await _fill(warm, range(2 * domains, 2 * domains + mx))
    await _drop(warm)
    rss_per_domain = await _by_rss(settings, range(domains, 2 * domains))
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    base = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    engine = build_engine(settings)
    await _fill(engine, range(domains))
    took = time.perf_counter() - started
    await _settle()
    used = tracemalloc.get_traced_memory()[0] - base
    top = tracemalloc.take_snapshot().compare_to(before, "filename")[:6]
    tracemalloc.stop()
    names = [normalize_domain(f"d{n}.bench.test") for n in range(domains)]
    cached = sum(engine.checker.cached(name) is not None for name in names)
    report = await engine.checker.check(names[0])
    assert report is not None
    size = len(dumps(report.to_json()).encode())
    await _drop(engine)
    per_domain = used / domains
    print(f"{domains} domains over {mx} MX hosts, filled in {took:.1f} s (under tracemalloc); "
          f"{cached} still cached")  # fmt: skip
    print(f"Python heap held by the engine  {used / 2**20:8.1f} MiB")
    print(f"per cached domain               {per_domain:8.0f} B")
    print(f"one report's JSON               {size:8d} B")
    print(f"ratio                           {per_domain / size:8.1f}×")
    print(f"RSS growth per cached domain    {rss_per_domain:8.0f} B  (untraced fill; with the "
          "allocator's overhead)")  # fmt: skip
    print("where the heap goes (per domain, by the file that allocated it):")
    for stat in top:
        name = "/".join(Path(str(stat.traceback[0].filename)).parts[-2:])
        print(f"  {stat.size_diff / domains:8.0f} B  {name}")


async def _by_rss(settings: Settings, names: range) -> float:
    """Resident-set growth per domain for a fill without tracemalloc (its own overhead)."""
    await _settle()
    before = _rss()
    engine = build_engine(settings)
    await _fill(engine, names)
    await _settle()
    grown = _rss() - before
    await _drop(engine)
    return grown / len(names)


async def _settle() -> None:
    # The loop's handle that resumed us still holds gather's result and every finished task
    # until the next turn of the loop: let it go, or they would count as cache.
    await asyncio.sleep(0)
    gc.collect()


async def _drop(engine: Engine) -> None:
    await engine.checker.close()
    del engine
    await _settle()


def _rss() -> int:
    """This process's resident set now, in bytes."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize()


def _serve(domains: int, mx: int) -> None:
    """The child: the servers, until this process's stdin closes."""
    from bench.audit import Servers  # imported here: the parent never starts servers itself

    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        servers = Servers(2 * domains + mx, mx, 0.0, Path(tmp))
        print(f"ready {servers.dns_port} {servers.smtp_port} {servers.ca_file}", flush=True)
        sys.stdin.read()


def main() -> None:
    """Start the servers' process, fill and measure, print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--domains", type=int, default=10_000)
    parser.add_argument("--mx", type=int, default=100, help="MX hosts (≤ 250)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.domains, args.mx)
        return
    child = [sys.executable, "-m", "bench.memory", "--serve", f"--domains={args.domains}"]
    with (
        tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp,
        subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [*child, f"--mx={args.mx}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        ) as servers,
    ):
        assert servers.stdout is not None
        assert servers.stdin is not None
        ready = servers.stdout.readline()
        if not ready.startswith("ready "):
            raise SystemExit("the servers did not start")
        try:
            asyncio.run(_measure(_settings(ready, Path(tmp), args.domains), args.domains, args.mx))
        finally:
            servers.stdin.close()
            servers.wait(timeout=30)


if __name__ == "__main__":
    main()
