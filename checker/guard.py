"""The address guard: the service connects only to globally routable addresses.

A domain's owner chooses where its MX records point, so without this guard anyone could
make the service connect to addresses inside the network it runs in.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from checker.settings import IPNetwork

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: IPv4 in the last 32 bits
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215 local use: never public


class AddressGuard:
    """Decides whether an IP may be connected to: public, or inside an allowed network."""

    def __init__(self, allow_networks: Iterable[IPNetwork] = ()) -> None:
        self._allow = tuple(allow_networks)

    def permits(self, ip: str) -> bool:
        """True when `ip` is an IP literal that is globally routable or explicitly allowed."""
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        if any(address in net for net in self._allow if net.version == address.version):
            return True
        return is_public(address)


def is_public(address: IPAddress) -> bool:
    """True for a globally routable unicast address, looking through embedded IPv4 forms."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in _LOCAL_NAT64 or address.is_site_local:
            return False
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_public(embedded)
    if address in _CGNAT:
        return False
    return address.is_global and not (
        address.is_multicast
        or address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, 6to4 or NAT64 IPv6 address, if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None
