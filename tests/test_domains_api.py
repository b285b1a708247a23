"""GET /v1/domains/{domain} against the hermetic world: every behaviour on the full report."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import ClientFactory
from tests.world import BLOCKED, COUNTED, GOOD, World


@dataclass(frozen=True)
class Expect:
    """What the report for one test domain must say."""

    mail: str
    level: str
    tls_ok: bool = False
    statuses: tuple[str, ...] = ()  # per address, in MX order
    reasons: tuple[str, ...] = ()
    cert_error: str | None = None
    warnings: tuple[str, ...] = ()  # prefixes
    mx_source: str = "mx"


BEHAVIOURS: dict[str, Expect] = {
    "good.test": Expect("accepts", "verified", True, ("ok",)),
    "nostarttls.test": Expect("accepts", "none", statuses=("ok",), reasons=("no_starttls",)),
    "selfsigned.test": Expect(
        "accepts", "encrypted", False, ("ok",), ("certificate_self_signed",), "self_signed"
    ),
    "expired.test": Expect(
        "accepts", "encrypted", False, ("ok",), ("certificate_expired",), "expired"
    ),
    "wrongname.test": Expect(
        "accepts",
        "encrypted",
        False,
        ("ok",),
        ("certificate_hostname_mismatch",),
        "hostname_mismatch",
    ),
    "tls10.test": Expect("accepts", "none", statuses=("ok",), reasons=("tls_version_too_old",)),
    "starttls454.test": Expect("accepts", "none", statuses=("ok",), reasons=("starttls_refused",)),
    "refused.test": Expect("accepts", "unknown", statuses=("refused",), reasons=("smtp_refused",)),
    "greet421.test": Expect(
        "accepts", "unknown", statuses=("rate_limited",), reasons=("smtp_rate_limited",)
    ),
    "greet554.test": Expect(
        "accepts", "unknown", statuses=("rejected",), reasons=("smtp_rejected",)
    ),
    "ehlo500.test": Expect("accepts", "none", statuses=("ok",), reasons=("no_starttls",)),
    "slowgreeting.test": Expect("accepts", "verified", True, ("ok",)),
    "silent.test": Expect("accepts", "unknown", statuses=("timeout",), reasons=("smtp_timeout",)),
    "onerefused.test": Expect("accepts", "verified", True, ("ok", "refused"), ("smtp_refused",)),
    "mixed.test": Expect("accepts", "none", statuses=("ok", "ok"), reasons=("no_starttls",)),
    "nullmx.test": Expect("null_mx", "unknown", reasons=("null_mx",), mx_source="none"),
    "nullmixed.test": Expect("accepts", "verified", True, ("ok",), warnings=("null_mx_ignored",)),
    "implicit.test": Expect("accepts", "verified", True, ("ok",), mx_source="implicit"),
    "nxdomain.test": Expect("no_such_domain", "unknown", reasons=("nxdomain",), mx_source="none"),
    "nodata.test": Expect(
        "no_mail_host", "unknown", reasons=("no_mail_host",), mx_source="implicit"
    ),
    "dangling.test": Expect(
        "no_mail_host", "unknown", reasons=("no_mail_host",), warnings=("mx_no_address",)
    ),
    "halfdangling.test": Expect(
        "accepts", "verified", True, ("ok",), ("mx_no_address",), warnings=("mx_no_address",)
    ),
    "cname.test": Expect("accepts", "verified", True, ("ok",), warnings=("mx_cname",)),
    "servfail.test": Expect("dns_error", "unknown", reasons=("dns_servfail",), mx_source="none"),
    "dnserrormx.test": Expect("dns_error", "unknown", reasons=("dns_error",)),
    "dnstimeout.test": Expect("dns_error", "unknown", reasons=("dns_timeout",), mx_source="none"),
    "blocked.test": Expect(
        "accepts", "unknown", statuses=("blocked",), reasons=("address_blocked",)
    ),
    "overtcp.test": Expect("accepts", "verified", True, ("ok",)),
    "example.example": Expect(
        "no_such_domain", "unknown", reasons=("special_use_domain",), mx_source="none"
    ),
}


def _statuses(report: dict[str, Any]) -> tuple[str, ...]:
    return tuple(a["status"] for mx in report["mx"] for a in mx["addresses"])


class TestBehaviours:
    """Each test server behaviour shows up in the report exactly as DESIGN.md says."""

    @pytest.mark.parametrize(("domain", "expect"), BEHAVIOURS.items(), ids=BEHAVIOURS.keys())
    async def test_report(self, make_client: ClientFactory, domain: str, expect: Expect) -> None:
        """The report's mail status, level, tls_ok, address statuses, reasons and warnings."""
        client = await make_client()
        response = await client.get(f"/v1/domains/{domain}")
        assert response.status == 200
        report = await response.json()
        assert report["ascii_domain"] == domain
        assert (report["mail"], report["tls_level"], report["tls_ok"]) == (
            expect.mail,
            expect.level,
            expect.tls_ok,
        )
        assert report["mx_source"] == expect.mx_source
        assert _statuses(report) == expect.statuses
        assert set(expect.reasons) <= set(report["reasons"]), report["reasons"]
        for prefix in expect.warnings:
            assert any(w.startswith(prefix) for w in report["warnings"]), report["warnings"]
        if expect.cert_error:
            cert = report["mx"][0]["addresses"][0]["certificate"]
            assert cert["error"] == expect.cert_error

    async def test_good_report_fields(self, make_client: ClientFactory) -> None:
        """A verified address carries version, cipher and a trusted, matching certificate."""
        client = await make_client()
        report = await (await client.get("/v1/domains/good.test")).json()
        address = report["mx"][0]["addresses"][0]
        assert report["mx"][0]["host"] == "mx.good.test"
        assert report["mx"][0]["preference"] == 10
        assert address["ip"] == GOOD
        assert address["starttls"] is True
        assert address["tls_version"] in ("TLSv1.2", "TLSv1.3")
        assert address["cipher"]
        cert = address["certificate"]
        assert (cert["trusted"], cert["hostname_match"], cert["error"]) == (True, True, None)
        assert "mx.good.test" in cert["san"]
        assert report["cached"] is False
        assert report["expires_at"] > report["checked_at"]

    async def test_tls10_names_the_legacy_version(self, make_client: ClientFactory) -> None:
        """A TLS 1.0-only server is reported with the version its permissive handshake found."""
        client = await make_client()
        report = await (await client.get("/v1/domains/tls10.test")).json()
        address = report["mx"][0]["addresses"][0]
        assert address["tls_version"] == "TLSv1"
        assert address["handshake_error"]

    async def test_starttls_reply_code(self, make_client: ClientFactory) -> None:
        """A refused STARTTLS is reported with its reply code, not as "no STARTTLS"."""
        client = await make_client()
        report = await (await client.get("/v1/domains/starttls454.test")).json()
        address = report["mx"][0]["addresses"][0]
        assert (address["starttls"], address["starttls_reply"]) == (True, 454)

    async def test_unicode_domain(self, make_client: ClientFactory) -> None:
        """An IDN typed in Unicode is checked under its A-label and echoed in both forms."""
        client = await make_client()
        response = await client.get("/v1/domains/B%C3%BCcher.TEST.")
        report = await response.json()
        assert (report["domain"], report["ascii_domain"]) == ("bücher.test", "xn--bcher-kva.test")
        assert report["tls_level"] == "verified"

    async def test_relaxed_requirement(self, make_client: ClientFactory) -> None:
        """With CHECKER_REQUIRE_VERIFIED=false an encrypted domain is tls_ok."""
        client = await make_client(require_verified="false")
        report = await (await client.get("/v1/domains/selfsigned.test")).json()
        assert (report["tls_level"], report["tls_ok"]) == ("encrypted", True)

    async def test_tcp_fallback(self, make_client: ClientFactory, world: World) -> None:
        """A truncated UDP answer is asked again over TCP."""
        client = await make_client()
        await client.get("/v1/domains/overtcp.test")
        asked = [q for q in world.answerer.queries if q[1] == "overtcp.test." and q[2] == "MX"]
        assert ("udp", "overtcp.test.", "MX") in asked
        assert ("tcp", "overtcp.test.", "MX") in asked


class TestGuard:
    """The address guard keeps the service away from non-public addresses."""

    async def test_blocked_address_never_connected(
        self, make_client: ClientFactory, world: World
    ) -> None:
        """An MX at an address outside the allowed networks is blocked, and no packet is sent."""
        before = world.connections[BLOCKED]
        client = await make_client()
        report = await (await client.get("/v1/domains/blocked.test")).json()
        assert report["mx"][0]["addresses"][0]["status"] == "blocked"
        assert world.connections[BLOCKED] == before

    async def test_loopback_blocked_by_default(
        self, make_client: ClientFactory, world: World
    ) -> None:
        """Without CHECKER_ALLOW_NETWORKS even the good test server is refused."""
        before = world.connections[GOOD]
        client = await make_client(allow_networks="192.0.2.0/24")
        report = await (await client.get("/v1/domains/good.test")).json()
        assert _statuses(report) == ("blocked",)
        assert world.connections[GOOD] == before


class TestSharing:
    """Probes are shared: concurrent requests and domains that share an MX."""

    async def test_concurrent_requests_probe_once(
        self, make_client: ClientFactory, world: World
    ) -> None:
        """Twenty concurrent requests for one uncached domain cause one connection."""
        before = world.connections[COUNTED]
        client = await make_client()
        responses = await asyncio.gather(
            *(client.get("/v1/domains/concurrent.test") for _ in range(20))
        )
        reports = [await r.json() for r in responses]
        assert {r["tls_level"] for r in reports} == {"verified"}
        assert world.connections[COUNTED] - before == 1

    async def test_shared_mx_probed_once(self, make_client: ClientFactory, world: World) -> None:
        """Two domains with one MX host share its probe facts; the second comes from cache."""
        before = world.connections[COUNTED]
        client = await make_client()
        first = await (await client.get("/v1/domains/concurrent.test")).json()
        second = await (await client.get("/v1/domains/concurrent2.test")).json()
        assert first["tls_level"] == second["tls_level"] == "verified"
        assert world.connections[COUNTED] - before == 1

    async def test_second_request_is_cached(self, make_client: ClientFactory) -> None:
        """A repeated request is answered from the report cache and says so."""
        client = await make_client()
        first = await (await client.get("/v1/domains/good.test")).json()
        second = await (await client.get("/v1/domains/good.test")).json()
        assert (first["cached"], second["cached"]) == (False, True)
        assert second["checked_at"] == first["checked_at"]


class TestWait:
    """?wait= bounds how long a request waits; the check goes on without it."""

    async def test_pending_then_done(self, make_client: ClientFactory) -> None:
        """A slow check answers 202 pending with Retry-After, and a later request gets it."""
        client = await make_client()
        response = await client.get("/v1/domains/slowgreeting.test?wait=0")
        assert response.status == 202
        assert response.headers["Retry-After"]
        body = await response.json()
        assert body == {
            "status": "pending",
            "domain": "slowgreeting.test",
            "ascii_domain": "slowgreeting.test",
        }
        response = await client.get("/v1/domains/slowgreeting.test?wait=10")
        assert response.status == 200
        assert (await response.json())["tls_level"] == "verified"

    async def test_wait_capped_by_setting(self, make_client: ClientFactory) -> None:
        """A wait beyond CHECKER_REQUEST_WAIT is cut to it."""
        client = await make_client(request_wait="0.05")
        response = await client.get("/v1/domains/silent.test?wait=600")
        assert response.status == 202


class TestBadInput:
    """Every bad input gets a JSON 4xx with a stable code, never a stack trace."""

    @pytest.mark.parametrize(
        "path",
        [
            "/v1/domains/1.2.3.4",
            "/v1/domains/%5B::1%5D",
            "/v1/domains/localhost",
            "/v1/domains/a..b",
            "/v1/domains/-bad-.com",
            "/v1/domains/" + "a" * 64 + ".com",
            "/v1/domains/" + ("abcdefghi." * 26) + "com",
            "/v1/domains/under_score.com",
            "/v1/domains/%20",
            "/v1/domains/x" + "y" * 2000 + ".com",
        ],
    )
    async def test_invalid_domain(self, make_client: ClientFactory, path: str) -> None:
        """Malformed, overlong, IP-literal and single-label names are 400 invalid_domain."""
        client = await make_client()
        response = await client.get(path)
        assert response.status == 400
        body = await response.json()
        assert body["error"]["code"] == "invalid_domain"
        assert body["error"]["message"]

    @pytest.mark.parametrize("wait", ["abc", "-1", "nan", "inf", ""])
    async def test_invalid_wait(self, make_client: ClientFactory, wait: str) -> None:
        """A wait that is not a finite, non-negative number is 400 invalid_wait."""
        client = await make_client()
        response = await client.get(f"/v1/domains/good.test?wait={wait}")
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "invalid_wait"

    async def test_unknown_route(self, make_client: ClientFactory) -> None:
        """An unknown path is a JSON 404."""
        client = await make_client()
        response = await client.get("/v1/nothing")
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "not_found"

    async def test_wrong_method(self, make_client: ClientFactory) -> None:
        """A wrong method is a JSON 405 with Allow."""
        client = await make_client()
        response = await client.post("/v1/domains/good.test")
        assert response.status == 405
        assert (await response.json())["error"]["code"] == "method_not_allowed"
        assert "GET" in response.headers["Allow"]
