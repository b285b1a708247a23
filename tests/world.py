"""The hermetic test world: a DNS server and SMTP servers on loopback, one behaviour per address.

Everything runs in one background thread with its own event loop, for the whole test session.
Each SMTP server counts the connections it accepts, so tests can prove what was (not) probed.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
import ssl
import tempfile
import threading
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import dns.zone
import trustme
from aiosmtpd.smtp import SMTP
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.dns_server import DnsBehaviour, ZoneAnswerer, serve_dns

# One address per behaviour. 127.0.0.0/25 is what tests allow; .200 lies outside it.
GOOD = "127.0.0.10"
NO_STARTTLS = "127.0.0.11"
SELF_SIGNED = "127.0.0.12"
EXPIRED = "127.0.0.13"
WRONG_NAME = "127.0.0.14"
TLS10 = "127.0.0.15"
STARTTLS_454 = "127.0.0.16"
REFUSED = "127.0.0.17"  # nothing listens here
GREET_421 = "127.0.0.18"
SLOW_GREETING = "127.0.0.19"
SILENT = "127.0.0.20"
COUNTED = "127.0.0.21"
GREET_554 = "127.0.0.22"
EHLO_500 = "127.0.0.23"
BLOCKED = "127.0.0.200"
ALLOWED_NETWORKS = "127.0.0.0/25"

ZONE = f"""
$ORIGIN test.
$TTL 300
@                 SOA ns.test. hostmaster.test. 1 3600 600 86400 60
@                 NS  ns.test.
ns                A   127.0.0.1
good              MX  10 mx.good.test.
mx.good           A   {GOOD}
mx2.good          A   {GOOD}
shared            MX  10 mx.good.test.
nostarttls        MX  10 mx.nostarttls.test.
mx.nostarttls     A   {NO_STARTTLS}
selfsigned        MX  10 mx.selfsigned.test.
mx.selfsigned     A   {SELF_SIGNED}
expired           MX  10 mx.expired.test.
mx.expired        A   {EXPIRED}
wrongname         MX  10 mx.wrongname.test.
mx.wrongname      A   {WRONG_NAME}
tls10             MX  10 mx.tls10.test.
mx.tls10          A   {TLS10}
starttls454       MX  10 mx.starttls454.test.
mx.starttls454    A   {STARTTLS_454}
refused           MX  10 mx.refused.test.
mx.refused        A   {REFUSED}
greet421          MX  10 mx.greet421.test.
mx.greet421       A   {GREET_421}
greet554          MX  10 mx.greet554.test.
mx.greet554       A   {GREET_554}
ehlo500           MX  10 mx.ehlo500.test.
mx.ehlo500        A   {EHLO_500}
slowgreeting      MX  10 mx.slowgreeting.test.
mx.slowgreeting   A   {SLOW_GREETING}
silent            MX  10 mx.silent.test.
mx.silent         A   {SILENT}
onerefused        MX  10 mx.good.test.
onerefused        MX  20 mx.refused.test.
mixed             MX  10 mx.good.test.
mixed             MX  20 mx.nostarttls.test.
nullmx            MX  0 .
nullmixed         MX  0 .
nullmixed         MX  10 mx.good.test.
implicit          A   {GOOD}
nodata            TXT "v=spf1 -all"
dangling          MX  10 mx.dangling.test.
halfdangling      MX  10 mx.dangling.test.
halfdangling      MX  20 mx.good.test.
cname             MX  10 alias.cname.test.
alias.cname       CNAME mx.good.test.
blocked           MX  10 mx.blocked.test.
mx.blocked        A   {BLOCKED}
concurrent        MX  10 mx.concurrent.test.
mx.concurrent     A   {COUNTED}
concurrent2       MX  10 mx.concurrent.test.
overtcp           MX  10 mx.good.test.
xn--bcher-kva     MX  10 mx.good.test.
dnserrormx        MX  10 mx.servfail.test.
; twins of the outcome domains, for domain-level suppressions in the preview matrix
supgood           MX  10 mx.good.test.
supselfsigned     MX  10 mx.selfsigned.test.
supnostarttls     MX  10 mx.nostarttls.test.
suprefused        MX  10 mx.refused.test.
supnullmx         MX  0 .
; more MX hosts than CHECKER_MAX_MX (5): the first five by preference are checked
manymx            MX  10 mx.good.test.
manymx            MX  20 mx2.good.test.
manymx            MX  30 mx.nostarttls.test.
manymx            MX  40 mx.selfsigned.test.
manymx            MX  50 mx.expired.test.
manymx            MX  60 mx.wrongname.test.
manymx            MX  70 mx.tls10.test.
; an MX target that is not a host name
badmx             MX  10 bad_name.test.
; any name under slowdns.test: an MX whose answer comes late (for long-running audits)
*.slowdns         MX  10 mx.good.test.
"""
DNS_BEHAVIOUR = DnsBehaviour(
    servfail={"servfail.test.", "supservfail.test.", "mx.servfail.test."},
    silent={"dnstimeout.test."},
    truncate={"overtcp.test."},
    slow_suffixes={".slowdns.test.": 0.3},
)


@dataclass
class World:
    """Where the test servers listen, and what they saw."""

    dns_port: int
    smtp_port: int
    ca_file: Path
    answerer: ZoneAnswerer
    connections: collections.Counter[str] = field(default_factory=collections.Counter)

    def env(self, **extra: str) -> dict[str, str]:
        """CHECKER_* variables that point the service at this world, and only at it."""
        base = {
            "CHECKER_NAMESERVERS": f"127.0.0.1:{self.dns_port}",
            "CHECKER_SMTP_PORT": str(self.smtp_port),
            "CHECKER_CA_FILE": str(self.ca_file),
            "CHECKER_ALLOW_NETWORKS": ALLOWED_NETWORKS,
            "CHECKER_ALLOW_SPECIAL_USE": "test",
            "CHECKER_HELO_NAME": "preflight.mailpreflight.test",
            "CHECKER_DNS_TIMEOUT": "1",
            "CHECKER_CONNECT_TIMEOUT": "2",
            "CHECKER_READ_TIMEOUT": "1",
            "CHECKER_PROBE_DEADLINE": "4",
            "CHECKER_AUTH": "off",
            "CHECKER_RATE_LIMIT": "0",
            "CHECKER_PREFETCH": "false",
            "CHECKER_MAX_CONCURRENT_CHECKS": "1000",
        }
        return base | extra


class _Certs:
    """Every certificate the SMTP servers present."""

    def __init__(self, ca: trustme.CA, tmp: Path) -> None:
        now = dt.datetime.now(dt.UTC)
        self.ca, self.tmp = ca, tmp
        good = ["mx.good.test", "mx2.good.test", "implicit.test", "alias.cname.test"]
        self.good = self._leaf(*good, "mx.nostarttls.test", "mx.concurrent.test")
        self.slow = self._leaf("mx.slowgreeting.test")
        self.expired = self._leaf(
            "mx.expired.test",
            not_before=now - dt.timedelta(days=60),
            not_after=now - dt.timedelta(days=1),
        )
        self.wrong = self._leaf("other.example.net")
        self.tls10 = self._leaf("mx.tls10.test")
        self.self_signed = self._self_signed("mx.selfsigned.test")

    def _leaf(
        self,
        *names: str,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> Path:
        path = self.tmp / f"{names[0]}.pem"
        leaf = self.ca.issue_cert(*names, not_before=not_before, not_after=not_after)
        leaf.private_key_and_cert_chain_pem.write_to_path(path)
        return path

    def _self_signed(self, name: str) -> Path:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256())
        )
        path = self.tmp / f"{name}.pem"
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            + cert.public_bytes(serialization.Encoding.PEM)
        )
        return path


def _server_context(pem: Path, legacy: bool = False) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(pem))
    if legacy:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    return ctx


T = TypeVar("T")
Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _greet_421(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"421 mx.greet421.test too busy, try later\r\n")


async def _greet_554(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"554 mx.greet554.test no service for you\r\n")
    await reader.readline()  # QUIT, perhaps


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(30)


async def _ehlo_500(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 mx.ehlo500.test ESMTP\r\n")
    await reader.readline()
    writer.write(b"500 5.5.1 what is EHLO\r\n")
    await reader.readline()
    writer.write(b"250 mx.ehlo500.test\r\n")
    await reader.readline()
    writer.write(b"221 bye\r\n")


async def _starttls_454(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 mx.starttls454.test ESMTP\r\n")
    await reader.readline()
    writer.write(b"250-mx.starttls454.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
    await reader.readline()
    writer.write(b"454 4.7.0 TLS not available due to temporary reason\r\n")
    await reader.readline()
    writer.write(b"221 bye\r\n")


def _slow_greeting(context: ssl.SSLContext) -> Script:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for line in (b"220-mx.slowgreeting.test ESMTP\r\n", b"220-please wait\r\n"):
            writer.write(line)
            await writer.drain()
            await asyncio.sleep(0.4)
        writer.write(b"220 ready\r\n")
        await reader.readline()
        writer.write(b"250-mx.slowgreeting.test\r\n250-SIZE 1000000\r\n250 STARTTLS\r\n")
        await reader.readline()
        writer.write(b"220 go ahead\r\n")
        await writer.drain()
        await writer.start_tls(context)
        await reader.readline()
        writer.write(b"221 bye\r\n")

    return script


class _Runner:
    """The background thread and its loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(_wrap(coro), self.loop).result(timeout=30)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


async def _wrap(coro: Awaitable[T]) -> T:
    return await coro


class WorldServers:
    """Starts and stops every server of the world."""

    def __init__(self) -> None:
        # aiosmtpd logs every handshake our probe abandons on purpose, with a traceback.
        logging.getLogger("mail.log").setLevel(logging.CRITICAL)
        self._tmp = tempfile.TemporaryDirectory(prefix="mailpreflight-world-")
        tmp = Path(self._tmp.name)
        ca = trustme.CA()
        ca_file = tmp / "ca.pem"
        ca.cert_pem.write_to_path(ca_file)
        self.certs = _Certs(ca, tmp)
        self.runner = _Runner()
        self.servers: list[object] = []
        answerer = ZoneAnswerer(
            dns.zone.from_text(ZONE, origin="test.", relativize=False), DNS_BEHAVIOUR
        )
        dns_port, dns_servers = self.runner.run(serve_dns(answerer))
        self.servers += dns_servers
        self.world = World(dns_port, 0, ca_file, answerer)
        self.world.smtp_port = self.runner.run(self._start_smtp())

    def close(self) -> None:
        """Stop the servers and the thread; remove the certificates."""
        self.runner.run(self._stop())
        self.runner.stop()
        self._tmp.cleanup()

    async def _stop(self) -> None:
        for server in self.servers:
            close = getattr(server, "close", None)
            if close is not None:
                close()
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _start_smtp(self) -> int:
        for _ in range(20):
            port = await self._free_port()
            try:
                await self._bind_all(port)
            except OSError:
                await self._stop()
                self.servers = [s for s in self.servers if not isinstance(s, asyncio.Server)]
                continue
            return port
        raise RuntimeError("no common free port for the test SMTP servers")

    async def _free_port(self) -> int:
        probe = await asyncio.start_server(lambda r, w: None, host=GOOD, port=0)
        port: int = probe.sockets[0].getsockname()[1]
        probe.close()
        await probe.wait_closed()
        return port

    async def _bind_all(self, port: int) -> None:
        c = self.certs
        aiosmtpd = {
            GOOD: _server_context(c.good),
            NO_STARTTLS: None,
            SELF_SIGNED: _server_context(c.self_signed),
            EXPIRED: _server_context(c.expired),
            WRONG_NAME: _server_context(c.wrong),
            TLS10: _server_context(c.tls10, legacy=True),
            COUNTED: _server_context(c.good),
        }
        for ip, context in aiosmtpd.items():
            await self._aiosmtpd(ip, port, context)
        scripts: dict[str, Script] = {
            STARTTLS_454: _starttls_454,
            GREET_421: _greet_421,
            GREET_554: _greet_554,
            EHLO_500: _ehlo_500,
            SLOW_GREETING: _slow_greeting(_server_context(c.slow)),
            SILENT: _silent,
            BLOCKED: _silent,
        }
        for ip, script in scripts.items():
            await self._scripted(ip, port, script)

    async def _aiosmtpd(self, ip: str, port: int, context: ssl.SSLContext | None) -> None:
        loop = asyncio.get_running_loop()
        name = f"mx-{ip}.test"

        def factory() -> SMTP:
            self.world.connections[ip] += 1
            return SMTP(_Handler(), hostname=name, tls_context=context, loop=loop)

        self.servers.append(await loop.create_server(factory, host=ip, port=port))

    async def _scripted(self, ip: str, port: int, script: Script) -> None:
        async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.world.connections[ip] += 1
            try:
                await script(reader, writer)
                await writer.drain()
            except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self.servers.append(await asyncio.start_server(client, host=ip, port=port))


class _Handler:
    """aiosmtpd handler with no hooks: the probe never gets as far as a transaction."""
