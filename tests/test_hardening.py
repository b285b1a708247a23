"""Hostile inputs found in review: each once a 500, a wrong grade, or a limit that did not hold."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import sqlite3
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from checker.audits import AuditService
from checker.certificates import describe
from checker.guard import AddressGuard
from checker.models import CertError, ProbeFacts, ProbeStatus
from checker.names import normalize_domain
from checker.preview import PreviewEngine
from checker.settings import Settings
from checker.store import Store
from checker.wiring import Deps, build_engine
from tests.conftest import ClientFactory
from tests.world import World

NOW = dt.datetime.now(dt.UTC)


class RaisingProber:
    """A prober that meets something it does not expect."""

    def __init__(self) -> None:
        self.calls = 0

    async def probe(self, host: str, ip: str) -> ProbeFacts:
        self.calls += 1
        raise ValueError("a certificate extension cryptography refuses")


class CountingProber:
    """Counts probes in flight per IP."""

    def __init__(self) -> None:
        self.active: dict[str, int] = {}
        self.most = 0

    async def probe(self, host: str, ip: str) -> ProbeFacts:
        self.active[ip] = self.active.get(ip, 0) + 1
        self.most = max(self.most, self.active[ip])
        await asyncio.sleep(0.05)
        self.active[ip] -= 1
        return ProbeFacts(host, ip, ProbeStatus.OK, NOW, starttls=False)


class TestProbeFailures:
    """A probe that raises is a cached protocol_error, not a failed check."""

    async def test_raising_probe(self, world: World) -> None:
        """The report says protocol_error; the next check uses the cached failure."""
        prober = RaisingProber()
        engine = build_engine(Settings.from_env(world.env()), Deps(prober=prober))
        try:
            report = await engine.checker.check(normalize_domain("good.test"))
            again = await engine.checker.check(normalize_domain("shared.test"))
        finally:
            await engine.checker.close()
        assert report is not None
        assert again is not None
        assert report.mx[0].addresses[0].facts.status == "protocol_error"
        assert report.tls_level == "unknown"
        assert prober.calls == 1

    async def test_one_probe_per_ip(self, world: World) -> None:
        """Three MX names on one IP never get probed at the same time."""
        prober = CountingProber()
        engine = build_engine(Settings.from_env(world.env()), Deps(prober=prober))
        names = ["good.test", "nostarttls.test", "implicit.test", "cname.test", "manymx.test"]
        try:
            await asyncio.gather(*(engine.checker.check(normalize_domain(n)) for n in names))
        finally:
            await engine.checker.close()
        assert prober.most == 1


class TestCertificates:
    """A date error above the leaf does not make the chain trusted."""

    def test_expired_intermediate(self) -> None:
        """Verify code 10 with an in-date leaf: an intermediate expired, the chain is untrusted."""
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mx.example.net")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Old CA")]))
            .public_key(key.public_key())
            .serial_number(1)
            .not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=30))
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName("mx.example.net")]), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        der = cert.public_bytes(serialization.Encoding.DER)
        facts = describe(der, "mx.example.net", 10, NOW)
        assert (facts.trusted, facts.error) == (False, CertError.UNTRUSTED)


class TestGuard:
    """Address forms that looked public and are not."""

    def test_site_local_and_local_nat64(self) -> None:
        """fec0::/10 and the local-use NAT64 prefix are refused."""
        guard = AddressGuard()
        assert not guard.permits("fec0::1")
        assert not guard.permits("64:ff9b:1:a00:1::808:808")
        assert guard.permits("64:ff9b::808:808")


class TestMxNames:
    """An MX target that is not a host name is skipped, with a warning."""

    async def test_bad_mx_name(self, make_client: ClientFactory) -> None:
        """The only MX is not a host name: no mail host, never an implicit MX."""
        client = await make_client()
        report = await (await client.get("/v1/domains/badmx.test")).json()
        assert (report["mail"], report["mx_source"]) == ("no_mail_host", "mx")
        assert any(w.startswith("mx_invalid_name") for w in report["warnings"])


class TestUploads:
    """Audit uploads that used to fail badly."""

    async def test_huge_csv_cell(self, make_client: ClientFactory) -> None:
        """A CSV cell over the csv module's limit is a 400, and no job is left."""
        client = await make_client()
        body = b'email\r\n"' + b"a" * 200_000 + b'@good.test"\r\n'
        response = await client.post(
            "/v1/audits", data=io.BytesIO(body), headers={"Content-Type": "text/csv"}
        )
        assert response.status == 400
        assert (await (await client.get("/v1/audits")).json())["total"] == 0

    async def test_half_uploaded_audit_removed_at_start(self, world: World, tmp_path: Path) -> None:
        """An audit a crash left while uploading is removed when the workers start."""
        settings = Settings.from_env({**world.env(), "CHECKER_DB": str(tmp_path / "u.db")})
        engine = build_engine(settings)
        store = Store(settings.db)
        await store.open()

        def leave_one(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO audits (id, owner, credential, policy, status, created_at)"
                " VALUES ('aud_x', '', 't', 'tls_or_fallback', 'uploading', '2026-01-01T00:00:00Z')"
            )

        await store.run(leave_one)
        audits = AuditService(store, PreviewEngine(engine.checker, store))
        runner = asyncio.create_task(audits.run())
        try:
            for _ in range(100):
                if await audits.get("aud_x") is None:
                    break
                await asyncio.sleep(0.02)
            assert await audits.get("aud_x") is None
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
            await engine.checker.close()
            await store.close()
