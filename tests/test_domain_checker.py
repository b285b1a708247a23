"""DomainChecker details: caps on MX hosts and addresses, deterministic sampling."""

from __future__ import annotations

import ipaddress

import pytest

from checker.domain_checker import sample_addresses
from tests.conftest import ClientFactory

V4 = tuple(f"192.0.2.{n}" for n in range(1, 9))
V6 = tuple(f"2001:db8::{n}" for n in range(1, 9))


class TestSampling:
    """At most N addresses per MX, the same ones every time, both families represented."""

    @pytest.mark.parametrize(
        ("addresses", "limit", "v4", "v6"),
        [
            (V4[:3], 4, 3, 0),
            (V4 + V6, 4, 2, 2),
            (V4 + V6[:1], 4, 3, 1),
            (V6, 2, 0, 2),
            (V4 + V6, 1, 1, 0),
        ],
    )
    def test_counts(self, addresses: tuple[str, ...], limit: int, v4: int, v6: int) -> None:
        """The sample has `limit` addresses at most, alternating IPv4 and IPv6."""
        chosen = sample_addresses("mx.example.net", addresses, limit)
        versions = [ipaddress.ip_address(a).version for a in chosen]
        assert (versions.count(4), versions.count(6)) == (v4, v6)
        assert set(chosen) <= set(addresses)

    def test_deterministic_and_host_dependent(self) -> None:
        """The same host gets the same sample whatever the order; another host may differ."""
        first = sample_addresses("mx1.example.net", V4, 3)
        assert sample_addresses("mx1.example.net", tuple(reversed(V4)), 3) == first
        others = {sample_addresses(f"mx{n}.example.net", V4, 3) for n in range(20)}
        assert len(others) > 1  # spread over the addresses, not always the lowest ones


class TestCaps:
    """More MX hosts than CHECKER_MAX_MX: the most preferred are checked, with a warning."""

    async def test_mx_capped(self, make_client: ClientFactory) -> None:
        """Seven MX records, five checked in preference order, and the warning says so."""
        client = await make_client()
        report = await (await client.get("/v1/domains/manymx.test")).json()
        assert [m["preference"] for m in report["mx"]] == [10, 20, 30, 40, 50]
        assert "mx_capped: checked 5 of 7" in report["warnings"]
        assert report["tls_level"] == "none"  # the worst of the five: mx.nostarttls.test
