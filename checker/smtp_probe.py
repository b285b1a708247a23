"""One polite SMTP session per probe: greeting, EHLO, STARTTLS, TLS handshake, QUIT.

Never RCPT, VRFY or DATA, never pipelining. The probe returns facts; grading judges them.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ssl
import time
import warnings
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from checker.certificates import describe
from checker.metrics import Metrics
from checker.models import ProbeFacts, ProbeStatus

MAX_LINE = 2048  # bytes in one reply line (RFC 5321 says 512; be lenient, but bounded)
MAX_REPLY_LINES = 64
_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT}


class Prober(Protocol):
    """What the checker needs from an SMTP prober."""

    async def probe(self, host: str, ip: str) -> ProbeFacts:
        """Probe `ip` as MX `host`; never raises for network or protocol failures."""
        ...


@dataclass(frozen=True, slots=True)
class ProbeConfig:
    """The prober's part of the settings."""

    port: int = 25
    helo_name: str = "mailpreflight.invalid"
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    deadline: float = 60.0
    ca_file: Path | None = None


class _Failure(Exception):
    """Ends a session early with a status; raised and caught only inside this module."""

    def __init__(self, status: ProbeStatus, error: str, code: int | None = None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.code = code


@dataclass(slots=True)
class _Reply:
    code: int
    lines: list[str]


class SmtpProber:
    """Probes one (host, IP) at a time per call; TLS contexts are built once."""

    def __init__(self, config: ProbeConfig, metrics: Metrics) -> None:
        self._config = config
        self._metrics = metrics
        self._strict = _strict_context(config.ca_file)
        self._unverified = _unverified_context()
        self._legacy = _legacy_context(_unverified_context())
        self._legacy_strict = _legacy_context(_strict_context(config.ca_file))

    async def probe(self, host: str, ip: str) -> ProbeFacts:
        """Run the session (and, when a handshake fails, one diagnostic re-run); return facts."""
        started = time.monotonic()
        now = datetime.now(UTC)
        self._metrics.probes_in_flight.inc()
        try:
            async with asyncio.timeout(self._config.deadline):
                facts = await self._probe_all(host, ip, now)
        except TimeoutError:
            facts = ProbeFacts(host, ip, ProbeStatus.TIMEOUT, now, error="probe deadline reached")
        finally:
            self._metrics.probes_in_flight.dec()
        elapsed = time.monotonic() - started
        self._metrics.probes.labels(facts.status).inc()
        self._metrics.probe_latency.labels(facts.status).observe(elapsed)
        return replace(facts, elapsed_ms=int(elapsed * 1000))

    async def _probe_all(self, host: str, ip: str, now: datetime) -> ProbeFacts:
        facts, failure = await self._session(host, ip, now, self._strict, None)
        if failure is None:
            return facts
        facts = replace(facts, handshake_error=_why(failure))
        if isinstance(failure, ssl.SSLCertVerificationError):
            # The chain did not verify; look again without verifying to report what is there.
            retry, _ = await self._session(host, ip, now, self._unverified, failure.verify_code)
            return retry if retry.tls_version else replace(facts, verify_code=failure.verify_code)
        # The default handshake failed: does the server speak only a legacy version?
        legacy, legacy_failure = await self._session(host, ip, now, self._legacy_strict, None)
        if isinstance(legacy_failure, ssl.SSLCertVerificationError):
            code = legacy_failure.verify_code
            legacy, _ = await self._session(host, ip, now, self._legacy, code)
        if not legacy.tls_version:
            return facts
        return replace(
            facts,
            legacy_tls_version=legacy.tls_version,
            cipher=legacy.cipher,
            certificate=legacy.certificate,
        )

    async def _session(
        self, host: str, ip: str, now: datetime, context: ssl.SSLContext, verify_code: int | None
    ) -> tuple[ProbeFacts, Exception | None]:
        """One SMTP session; returns the facts and the TLS handshake error, if there was one.

        `verify_code` is what to record about the chain: None when `context` verifies it,
        else the OpenSSL code an earlier verifying handshake failed with (-1: not checked).
        """
        base = ProbeFacts(host, ip, ProbeStatus.OK, now)
        try:
            reader, writer = await self._connect(ip)
        except _Failure as failure:
            return replace(base, status=failure.status, error=failure.error), None
        try:
            return await self._converse(base, reader, writer, context, verify_code)
        except _Failure as failure:
            return _failed(base, failure), None
        finally:
            writer.transport.abort()

    async def _connect(self, ip: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            async with asyncio.timeout(self._config.connect_timeout):
                return await asyncio.open_connection(ip, self._config.port, limit=MAX_LINE)
        except TimeoutError:
            raise _Failure(ProbeStatus.TIMEOUT, "connect timed out") from None
        except ConnectionRefusedError:
            raise _Failure(ProbeStatus.REFUSED, "connection refused") from None
        except OSError as exc:
            status = ProbeStatus.UNREACHABLE if exc.errno in _UNREACHABLE else ProbeStatus.REFUSED
            raise _Failure(status, f"connect failed: {exc.strerror or exc}") from None

    async def _converse(
        self,
        base: ProbeFacts,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        context: ssl.SSLContext,
        verify_code: int | None,
    ) -> tuple[ProbeFacts, Exception | None]:
        greeting = await self._reply(reader, "greeting")
        _expect_positive(greeting, "greeting")
        if greeting.code != 220:
            raise _Failure(ProbeStatus.PROTOCOL_ERROR, "unexpected greeting", greeting.code)
        ehlo = await self._command(reader, writer, f"EHLO {self._config.helo_name}", "EHLO")
        if 500 <= ehlo.code < 600:
            helo = await self._command(reader, writer, f"HELO {self._config.helo_name}", "HELO")
            _expect_positive(helo, "HELO")
            return replace(base, starttls=False, reply_code=helo.code), None
        _expect_positive(ehlo, "EHLO")
        if not _advertises_starttls(ehlo):
            await self._quit(reader, writer)
            return replace(base, starttls=False, reply_code=ehlo.code), None
        reply = await self._command(reader, writer, "STARTTLS", "STARTTLS")
        if reply.code != 220:
            await self._quit(reader, writer)
            return replace(base, starttls=True, starttls_reply=reply.code), None
        return await self._handshake(base, reader, writer, context, verify_code)

    async def _handshake(
        self,
        base: ProbeFacts,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        context: ssl.SSLContext,
        verify_code: int | None,
    ) -> tuple[ProbeFacts, Exception | None]:
        facts = replace(base, starttls=True, starttls_reply=220)
        try:
            async with asyncio.timeout(self._config.read_timeout):
                await writer.start_tls(context, server_hostname=base.host or None)
        except TimeoutError:
            raise _Failure(ProbeStatus.TIMEOUT, "TLS handshake timed out") from None
        except (ssl.SSLError, ConnectionError, OSError, EOFError, ValueError) as exc:
            # ValueError: a host name the ssl module cannot put in SNI (UnicodeError among them)
            return replace(facts, handshake_error=_why(exc)), exc
        tls = writer.get_extra_info("ssl_object")
        der = tls.getpeercert(binary_form=True) if tls else None
        try:
            certificate = describe(der, base.host, verify_code, base.checked_at) if der else None
        except ValueError:  # OpenSSL accepted what cryptography will not parse
            certificate = None
            facts = replace(facts, handshake_error="the peer certificate could not be parsed")
        cipher = tls.cipher() if tls else None
        facts = replace(
            facts,
            tls_version=tls.version() if tls else None,
            cipher=cipher[0] if cipher else None,
            certificate=certificate,
        )
        await self._quit(reader, writer)
        return facts, None

    async def _command(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, line: str, stage: str
    ) -> _Reply:
        writer.write(line.encode("ascii") + b"\r\n")
        try:
            async with asyncio.timeout(self._config.read_timeout):
                await writer.drain()
        except TimeoutError:
            raise _Failure(ProbeStatus.TIMEOUT, f"{stage}: write timed out") from None
        except OSError as exc:
            raise _Failure(ProbeStatus.PROTOCOL_ERROR, f"{stage}: {exc}") from None
        return await self._reply(reader, stage)

    async def _reply(self, reader: asyncio.StreamReader, stage: str) -> _Reply:
        """Read one whole (possibly multi-line, possibly slow) reply, within bounds."""
        lines: list[str] = []
        code = 0
        while len(lines) < MAX_REPLY_LINES:
            raw = await self._line(reader, stage)
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            if len(text) < 3 or not text[:3].isdigit() or text[3:4] not in ("", " ", "-"):
                raise _Failure(ProbeStatus.PROTOCOL_ERROR, f"{stage}: malformed reply line")
            if code and int(text[:3]) != code:
                raise _Failure(ProbeStatus.PROTOCOL_ERROR, f"{stage}: inconsistent reply codes")
            code = int(text[:3])
            lines.append(text[4:])
            if text[3:4] != "-":
                return _Reply(code, lines)
        raise _Failure(ProbeStatus.PROTOCOL_ERROR, f"{stage}: reply has too many lines")

    async def _line(self, reader: asyncio.StreamReader, stage: str) -> bytes:
        try:
            async with asyncio.timeout(self._config.read_timeout):
                return await reader.readuntil(b"\n")
        except TimeoutError:
            raise _Failure(ProbeStatus.TIMEOUT, f"{stage}: no reply in time") from None
        except asyncio.IncompleteReadError:
            raise _Failure(ProbeStatus.PROTOCOL_ERROR, f"{stage}: connection closed") from None
        except asyncio.LimitOverrunError:
            raise _Failure(ProbeStatus.PROTOCOL_ERROR, f"{stage}: reply line too long") from None
        except OSError as exc:
            raise _Failure(ProbeStatus.PROTOCOL_ERROR, f"{stage}: {exc}") from None

    async def _quit(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Say goodbye; the facts are complete, so a failure here changes nothing."""
        with contextlib.suppress(_Failure):
            await self._command(reader, writer, "QUIT", "QUIT")


def _expect_positive(reply: _Reply, stage: str) -> None:
    if 400 <= reply.code < 500:
        raise _Failure(ProbeStatus.RATE_LIMITED, f"{stage}: temporary failure", reply.code)
    if reply.code >= 500:
        raise _Failure(ProbeStatus.REJECTED, f"{stage}: rejected", reply.code)
    if not 200 <= reply.code < 400:
        raise _Failure(ProbeStatus.PROTOCOL_ERROR, f"{stage}: unexpected reply", reply.code)


def _advertises_starttls(ehlo: _Reply) -> bool:
    return any(line.strip().upper() == "STARTTLS" for line in ehlo.lines[1:])


def _failed(base: ProbeFacts, failure: _Failure) -> ProbeFacts:
    return replace(base, status=failure.status, error=failure.error, reply_code=failure.code)


def _why(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message}"[:200]
    if isinstance(exc, ssl.SSLError):
        return (exc.reason or str(exc)).lower()[:200]
    return (str(exc) or type(exc).__name__)[:200]


def _strict_context(ca_file: Path | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if ca_file is not None:
        ctx.load_verify_locations(cafile=str(ca_file))
    # The name is judged separately (RFC 6125, against the MX host) so that a mismatch is
    # reported as such rather than as a failed handshake.
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _unverified_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _legacy_context(ctx: ssl.SSLContext) -> ssl.SSLContext:
    """`ctx`, opened to TLS 1.0 and weak ciphers, only to name what a legacy server speaks."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    return ctx
