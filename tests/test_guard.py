"""The address guard: only globally routable addresses, unless explicitly allowed."""

from __future__ import annotations

import ipaddress

import pytest

from checker.guard import AddressGuard, is_public
from checker.settings import IPNetwork

_ADDRESSES = [
    pytest.param("8.8.8.8", True, id="v4-public"),
    pytest.param("1.1.1.1", True, id="v4-public-2"),
    pytest.param("172.32.0.1", True, id="v4-just-above-172.16/12"),
    pytest.param("100.128.0.1", True, id="v4-just-above-cgnat"),
    pytest.param("10.0.0.1", False, id="v4-10/8"),
    pytest.param("10.255.255.255", False, id="v4-10/8-top"),
    pytest.param("172.16.0.1", False, id="v4-172.16/12"),
    pytest.param("172.31.255.255", False, id="v4-172.16/12-top"),
    pytest.param("192.168.1.1", False, id="v4-192.168/16"),
    pytest.param("127.0.0.1", False, id="v4-loopback"),
    pytest.param("127.1.2.3", False, id="v4-loopback-range"),
    pytest.param("100.64.0.1", False, id="v4-cgnat"),
    pytest.param("100.127.255.254", False, id="v4-cgnat-top"),
    pytest.param("169.254.1.1", False, id="v4-link-local"),
    pytest.param("0.0.0.0", False, id="v4-unspecified"),
    pytest.param("0.1.2.3", False, id="v4-this-network"),
    pytest.param("224.0.0.1", False, id="v4-multicast"),
    pytest.param("239.255.255.255", False, id="v4-multicast-top"),
    pytest.param("240.0.0.1", False, id="v4-reserved"),
    pytest.param("255.255.255.255", False, id="v4-broadcast"),
    pytest.param("192.0.2.10", False, id="v4-doc-test-net-1"),
    pytest.param("198.51.100.1", False, id="v4-doc-test-net-2"),
    pytest.param("203.0.113.1", False, id="v4-doc-test-net-3"),
    pytest.param("198.18.0.1", False, id="v4-benchmarking"),
    pytest.param("2001:4860:4860::8888", True, id="v6-public"),
    pytest.param("2a00:1450:4001:81b::200e", True, id="v6-public-2"),
    pytest.param("::1", False, id="v6-loopback"),
    pytest.param("::", False, id="v6-unspecified"),
    pytest.param("fe80::1", False, id="v6-link-local"),
    pytest.param("febf:ffff::1", False, id="v6-link-local-top"),
    pytest.param("fc00::1", False, id="v6-unique-local-fc"),
    pytest.param("fd12:3456::1", False, id="v6-unique-local-fd"),
    pytest.param("ff02::1", False, id="v6-multicast-link"),
    pytest.param("ff0e::1", False, id="v6-multicast-global"),
    pytest.param("2001:db8::1", False, id="v6-documentation"),
    pytest.param("::ffff:10.0.0.1", False, id="v4-mapped-private"),
    pytest.param("::ffff:127.0.0.1", False, id="v4-mapped-loopback"),
    pytest.param("::ffff:8.8.8.8", True, id="v4-mapped-public"),
    pytest.param("2002:0a00:0001::", False, id="6to4-private"),
    pytest.param("2002:7f00:0001::1", False, id="6to4-loopback"),
    pytest.param("2002:0808:0808::", True, id="6to4-public"),
    pytest.param("64:ff9b::a00:1", False, id="nat64-private"),
    pytest.param("64:ff9b::7f00:1", False, id="nat64-loopback"),
    pytest.param("64:ff9b:1::a00:1", False, id="nat64-local-use-private"),
    pytest.param("64:ff9b::808:808", True, id="nat64-public"),
]


def _guard(*cidrs: str) -> AddressGuard:
    networks: list[IPNetwork] = [ipaddress.ip_network(c) for c in cidrs]
    return AddressGuard(networks)


class TestIsPublic:
    """`is_public` accepts only globally routable unicast, looking through embedded IPv4."""

    @pytest.mark.parametrize(("ip", "expected"), _ADDRESSES)
    def test_table(self, ip: str, expected: bool) -> None:
        """Each address is public exactly when it is globally routable unicast."""
        assert is_public(ipaddress.ip_address(ip)) is expected


class TestAddressGuard:
    """`AddressGuard.permits` decides whether the service may connect to a string IP."""

    @pytest.mark.parametrize(("ip", "expected"), _ADDRESSES)
    def test_default_guard_follows_is_public(self, ip: str, expected: bool) -> None:
        """Without allowed networks the guard permits exactly the public addresses."""
        assert AddressGuard().permits(ip) is expected

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("mx.example.com", id="host-name"),
            pytest.param("localhost", id="localhost"),
            pytest.param("", id="empty"),
            pytest.param(" 8.8.8.8", id="leading-space"),
            pytest.param("[2001:4860:4860::8888]", id="bracketed"),
            pytest.param("8.8.8.8:25", id="with-port"),
            pytest.param("134744072", id="integer-form"),
            pytest.param("8.8.8", id="short-dotted"),
        ],
    )
    def test_refuses_non_ip_strings(self, text: str) -> None:
        """Anything that is not an IP literal is refused, even if it could resolve publicly."""
        assert AddressGuard().permits(text) is False
        assert _guard("0.0.0.0/0", "::/0").permits(text) is False

    @pytest.mark.parametrize(
        ("ip", "expected"),
        [
            pytest.param("127.0.0.1", True, id="v4-loopback"),
            pytest.param("127.255.255.254", True, id="v4-loopback-range"),
            pytest.param("::1", True, id="v6-loopback"),
            pytest.param("::2", False, id="v6-next-to-loopback"),
            pytest.param("::ffff:127.0.0.1", False, id="mapped-loopback-other-family"),
            pytest.param("2002:7f00:0001::1", False, id="6to4-loopback-other-family"),
            pytest.param("::7f00:1", False, id="v4-compatible-other-family"),
            pytest.param("10.0.0.1", False, id="private-not-listed"),
            pytest.param("fe80::1", False, id="link-local-not-listed"),
            pytest.param("8.8.8.8", True, id="public-still-permitted"),
            pytest.param("2001:4860:4860::8888", True, id="v6-public-still-permitted"),
        ],
    )
    def test_allow_networks(self, ip: str, expected: bool) -> None:
        """Allowed networks exempt only addresses of their own family inside their range."""
        assert _guard("127.0.0.0/8", "::1/128").permits(ip) is expected

    def test_allow_v4_network_does_not_open_v6(self) -> None:
        """An allowed IPv4 network never exempts an IPv6 address, even one that embeds it."""
        guard = _guard("10.0.0.0/8")
        assert guard.permits("10.1.2.3") is True
        assert guard.permits("::ffff:10.1.2.3") is False
        assert guard.permits("64:ff9b::a01:203") is False

    def test_allow_networks_from_any_iterable(self) -> None:
        """The allowed networks may come from a generator and are kept for later calls."""
        guard = AddressGuard(ipaddress.ip_network(c) for c in ("192.168.0.0/16",))
        assert guard.permits("192.168.7.7") is True
        assert guard.permits("192.168.7.8") is True
        assert guard.permits("192.169.0.1") is True  # public: outside the allowed range
        assert guard.permits("172.16.0.1") is False
