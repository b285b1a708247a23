"""Audit benchmark: 100,000 recipients over ~2,000 domains, against loopback servers with delays.

Run: `.venv/bin/python -m bench.audit` (options: --recipients, --domains, --mx, --rtt).

Everything is on loopback: a dnspython DNS server that answers each query after `rtt`, and one
scripted SMTP server per MX address (127.0.1.x) that takes `rtt` per reply and does a real
STARTTLS handshake with a trustme certificate. The figure that matters is the ratio of the
measured time to the ideal bound: unique MX addresses × one probe's time ÷ allowed concurrency.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import ssl
import tempfile
import threading
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

import dns.zone
import trustme

from checker.audits import FINISHED, Audit, AuditService
from checker.names import normalize_domain
from checker.policy import Policy
from checker.preview import PreviewEngine
from checker.settings import Settings
from checker.store import Store
from checker.wiring import build_engine
from tests.dns_server import DnsBehaviour, ZoneAnswerer, serve_dns

T = TypeVar("T")


def _zone(domains: int, mx: int) -> str:
    lines = ["$ORIGIN bench.test.", "$TTL 3600", "@ SOA ns.bench.test. h.bench.test. 1 1 1 1 60"]
    lines += ["@ NS ns.bench.test.", "ns A 127.0.0.1"]
    lines += [f"d{n} MX 10 mx{n % mx}.bench.test." for n in range(domains)]
    lines += [f"mx{m} A 127.0.1.{m + 1}" for m in range(mx)]
    return "\n".join(lines) + "\n"


def _smtp(context: ssl.SSLContext, rtt: float) -> object:
    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.sleep(rtt)
            writer.write(b"220 mx.bench.test ESMTP\r\n")
            await reader.readline()
            await asyncio.sleep(rtt)
            writer.write(b"250-mx.bench.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
            await reader.readline()
            await asyncio.sleep(rtt)
            writer.write(b"220 go ahead\r\n")
            await writer.drain()
            await writer.start_tls(context)
            await reader.readline()
            writer.write(b"221 bye\r\n")
            await writer.drain()
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    return client


class Servers:
    """The loopback world of the benchmark, in a thread of its own."""

    def __init__(self, domains: int, mx: int, rtt: float, tmp: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        ca = trustme.CA()
        self.ca_file = tmp / "ca.pem"
        ca.cert_pem.write_to_path(self.ca_file)
        leaf = tmp / "leaf.pem"
        ca.issue_cert("*.bench.test").private_key_and_cert_chain_pem.write_to_path(leaf)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(str(leaf))
        zone = dns.zone.from_text(_zone(domains, mx), origin="bench.test.", relativize=False)
        answerer = ZoneAnswerer(zone, DnsBehaviour(slow_suffixes={".bench.test.": rtt}))
        self.dns_port, _ = self.run(serve_dns(answerer))
        self.smtp_port = self.run(self._smtp_servers(mx, rtt))

    def run(self, coro: Awaitable[T]) -> T:
        """Run `coro` on the servers' loop and wait for it."""

        async def wrap() -> T:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrap(), self.loop).result(60)

    async def _smtp_servers(self, mx: int, rtt: float) -> int:
        first = await asyncio.start_server(_smtp(self.context, rtt), "127.0.1.1", 0)  # type: ignore[arg-type]
        port: int = first.sockets[0].getsockname()[1]
        for m in range(1, mx):
            await asyncio.start_server(_smtp(self.context, rtt), f"127.0.1.{m + 1}", port)  # type: ignore[arg-type]
        return port


async def _measure(args: argparse.Namespace, servers: Servers, tmp: Path) -> None:
    settings = Settings.from_env(
        {
            "CHECKER_NAMESERVERS": f"127.0.0.1:{servers.dns_port}",
            "CHECKER_SMTP_PORT": str(servers.smtp_port),
            "CHECKER_CA_FILE": str(servers.ca_file),
            "CHECKER_ALLOW_NETWORKS": "127.0.1.0/24",
            "CHECKER_ALLOW_SPECIAL_USE": "test",
            "CHECKER_HELO_NAME": "bench.mailpreflight.test",
            "CHECKER_DB": str(tmp / "bench.db"),
            "CHECKER_AUDIT_CONCURRENCY": str(args.concurrency),
            "CHECKER_MAX_PROBES": str(args.concurrency),
        }
    )
    baseline = await cold_check(settings)
    engine = build_engine(settings)
    store = Store(settings.db)
    await store.open()
    audits = AuditService(
        store, PreviewEngine(engine.checker, store), settings.audit_workers,
        settings.audit_chunk_size, settings.audit_concurrency,
    )  # fmt: skip
    runner = asyncio.create_task(audits.run())
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    async def batches() -> object:
        for start in range(0, args.recipients, 1000):
            stop = min(start + 1000, args.recipients)
            yield [f"user{n}@d{n % args.domains}.bench.test" for n in range(start, stop)]

    started = time.perf_counter()
    audit = await audits.create("", "bench", Policy.TLS_OR_FALLBACK, None, batches())  # type: ignore[arg-type]
    current = await _wait_finished(audits, audit.id)
    elapsed = time.perf_counter() - started
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    await engine.checker.close()
    await store.close()
    concurrency = min(args.concurrency, args.mx)
    ideal = args.mx * baseline / concurrency
    # Every domain also costs one MX query (the MX hosts' addresses are shared and cached).
    with_dns = (args.mx * baseline + args.domains * args.rtt) / args.concurrency
    print(
        f"recipients        {args.recipients} over {args.domains} domains, {args.mx} MX addresses"
    )
    print(f"status            {current.status}, counts {current.counts}")
    print(f"one probe         {baseline * 1000:.0f} ms (rtt {args.rtt * 1000:.0f} ms per reply)")
    print(f"elapsed           {elapsed:.1f} s")
    print(f"recipients/s      {args.recipients / elapsed:.0f}")
    print(f"peak RSS          {rss_peak / 1024:.0f} MiB (before: {rss_before / 1024:.0f} MiB)")
    print(
        f"ideal bound       {ideal:.2f} s = {args.mx} addresses × {baseline:.3f} s ÷ {concurrency}"
    )
    print(f"ratio to ideal    {elapsed / ideal:.1f}×")
    print(f"bound with DNS    {with_dns:.2f} s (+ {args.domains} MX queries × {args.rtt:.3f} s)")
    print(f"ratio to that     {elapsed / with_dns:.1f}×")


async def _wait_finished(audits: AuditService, audit_id: str) -> Audit:
    """Poll until the audit has finished (the benchmark's only clock is the wall)."""
    while True:
        current = await audits.get(audit_id)
        assert current is not None
        if current.status in FINISHED:
            return current
        await asyncio.sleep(0.2)


async def cold_check(settings: Settings, domain: str = "d0.bench.test") -> float:
    """Seconds of one cold domain check (DNS and probes) by a fresh engine: nothing cached."""
    engine = build_engine(settings)
    try:
        started = time.perf_counter()
        report = await engine.checker.check(normalize_domain(domain))
        took = time.perf_counter() - started
    finally:
        await engine.checker.close()
    assert report is not None
    assert report.tls_level == "verified", report
    return took


def main() -> None:
    """Parse options, start the servers, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--domains", type=int, default=2_000)
    parser.add_argument("--mx", type=int, default=50, help="MX addresses (≤ 250)")
    parser.add_argument("--rtt", type=float, default=0.02, help="seconds per DNS answer/SMTP reply")
    parser.add_argument("--concurrency", type=int, default=8, help="audit domain checks at once")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        servers = Servers(args.domains, args.mx, args.rtt, Path(tmp))
        asyncio.run(_measure(args, servers, Path(tmp)))


if __name__ == "__main__":
    main()
