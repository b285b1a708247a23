"""Operator endpoints: health, readiness and Prometheus metrics."""

from __future__ import annotations

from tests.conftest import ClientFactory


class TestHealth:
    """Liveness and readiness."""

    async def test_healthz(self, make_client: ClientFactory) -> None:
        """Liveness answers 200 ok."""
        client = await make_client()
        response = await client.get("/healthz")
        assert response.status == 200
        assert await response.json() == {"status": "ok"}

    async def test_ready_when_resolver_answers(self, make_client: ClientFactory) -> None:
        """Readiness is 200 while the nameserver answers (even with a refusal)."""
        client = await make_client()
        response = await client.get("/readyz")
        assert response.status == 200
        assert (await response.json())["checks"]["resolver"] is True

    async def test_not_ready_without_resolver(self, make_client: ClientFactory) -> None:
        """Readiness is 503 when no nameserver answers."""
        client = await make_client(nameservers="127.0.0.1:9", dns_timeout="0.5")
        response = await client.get("/readyz")
        assert response.status == 503
        body = await response.json()
        assert body == {"status": "not_ready", "checks": {"resolver": False, "store": True}}

    async def test_unreachable_dns_is_dns_error(self, make_client: ClientFactory) -> None:
        """With no reachable nameserver a domain is a prompt dns_error report, not a hang."""
        client = await make_client(nameservers="127.0.0.1:9", dns_timeout="0.5")
        response = await client.get("/v1/domains/good.test")
        report = await response.json()
        assert (report["mail"], report["tls_level"], report["tls_ok"]) == (
            "dns_error",
            "unknown",
            False,
        )


class TestMetrics:
    """The Prometheus exposition: names, labels, and never a domain as a label."""

    async def test_metrics_after_a_check(self, make_client: ClientFactory) -> None:
        """A check moves the request, check, probe, DNS and cache series."""
        client = await make_client()
        await client.get("/v1/domains/good.test")
        await client.get("/v1/domains/good.test")
        response = await client.get("/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
        expected = [
            'mailpreflight_http_requests_total{method="GET",route="/v1/domains/{domain}",'
            'status="200"} 2.0',
            'mailpreflight_domain_checks_total{level="verified",mail="accepts"} 1.0',
            'mailpreflight_probes_total{status="ok"} 1.0',
            'mailpreflight_dns_queries_total{outcome="answer",rdtype="MX"} 1.0',
            'mailpreflight_cache_lookups_total{layer="report",result="hit"} 1.0',
            'mailpreflight_cache_lookups_total{layer="report",result="miss"} 1.0',
            "mailpreflight_probe_duration_seconds_bucket",
            "mailpreflight_http_request_duration_seconds_bucket",
            "mailpreflight_probes_in_flight 0.0",
        ]
        for line in expected:
            assert line in text, line
        assert "good.test" not in text
        assert "127.0.0.10" not in text

    async def test_unmatched_route_label(self, make_client: ClientFactory) -> None:
        """Unknown paths are counted under one bounded label."""
        client = await make_client()
        await client.get("/no/such/path/123")
        text = await (await client.get("/metrics")).text()
        assert 'route="unmatched"' in text
        assert "/no/such/path" not in text
