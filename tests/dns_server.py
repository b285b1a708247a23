"""An authoritative DNS server for test zones, built with dnspython, on loopback (UDP and TCP)."""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass, field
from typing import cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.node
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone


@dataclass
class DnsBehaviour:
    """Names that misbehave on purpose (absolute, lower-case, with the final dot)."""

    servfail: set[str] = field(default_factory=set)
    silent: set[str] = field(default_factory=set)
    truncate: set[str] = field(default_factory=set)  # always TC over UDP: forces TCP
    slow_suffixes: dict[str, float] = field(default_factory=dict)  # suffix → seconds of delay

    def delay(self, name: str) -> float:
        """How long to wait before answering `name`."""
        return next((d for s, d in self.slow_suffixes.items() if name.endswith(s)), 0.0)


class ZoneAnswerer:
    """Answers queries from one zone the way an authoritative server does."""

    def __init__(self, zone: dns.zone.Zone, behaviour: DnsBehaviour) -> None:
        self.zone = zone
        assert zone.origin is not None
        self.origin: dns.name.Name = zone.origin
        self.behaviour = behaviour
        self.queries: list[tuple[str, str, str]] = []  # (transport, name, type)

    def delay_of(self, wire: bytes) -> float:
        """The configured delay for the question in `wire`."""
        try:
            name = dns.message.from_wire(wire).question[0].name.to_text().lower()
        except (dns.exception.DNSException, IndexError):
            return 0.0
        return self.behaviour.delay(name)

    def answer(self, wire: bytes, transport: str) -> bytes | None:
        """The response to one query in wire format, or None to stay silent."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        question = query.question[0]
        name = question.name.to_text().lower()
        self.queries.append((transport, name, dns.rdatatype.to_text(question.rdtype)))
        if name in self.behaviour.silent:
            return None
        response = dns.message.make_response(query)
        if name in self.behaviour.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif transport == "udp" and name in self.behaviour.truncate:
            response.flags |= dns.flags.TC
        elif not question.name.is_subdomain(self.origin):
            response.set_rcode(dns.rcode.REFUSED)
        else:
            response.flags |= dns.flags.AA
            self._fill(response, question.name, question.rdtype)
        return response.to_wire()

    def _fill(self, response: dns.message.Message, qname: dns.name.Name, rdtype: int) -> None:
        name = qname
        for _ in range(8):  # follow CNAMEs inside the zone
            node = self.zone.get_node(name) or self._wildcard(name)
            if node is None:
                if not self._has_descendant(name):
                    response.set_rcode(dns.rcode.NXDOMAIN)
                self._add_soa(response)
                return
            cname = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.CNAME)
            if cname is not None and rdtype != dns.rdatatype.CNAME:
                response.answer.append(_rrset(name, cname))
                name = cname[0].target
                continue
            found = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.RdataType(rdtype))
            if found is None:
                self._add_soa(response)
                return
            response.answer.append(_rrset(name, found))
            return

    def _wildcard(self, name: dns.name.Name) -> dns.node.Node | None:
        """The `*.parent` node that covers `name`, if the zone has one (RFC 4592, simply)."""
        if name == self.origin or len(name) < 2:
            return None
        return self.zone.get_node(dns.name.Name(("*", *name.parent().labels)))

    def _has_descendant(self, name: dns.name.Name) -> bool:
        return any(n.is_subdomain(name) for n in self.zone.nodes)

    def _add_soa(self, response: dns.message.Message) -> None:
        soa = self.zone.get_rdataset(self.origin, dns.rdatatype.SOA)
        assert soa is not None
        response.authority.append(_rrset(self.origin, soa))


def _rrset(name: dns.name.Name, rdataset: dns.rdataset.Rdataset) -> dns.rrset.RRset:
    return dns.rrset.from_rdata_list(name, rdataset.ttl, list(rdataset))


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, answerer: ZoneAnswerer) -> None:
        self.answerer = answerer
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = self.answerer.answer(data, "udp")
        if reply is None or self.transport is None:
            return
        delay = self.answerer.delay_of(data)
        if delay:
            asyncio.get_running_loop().call_later(delay, self.transport.sendto, reply, addr)
        else:
            self.transport.sendto(reply, addr)


async def _tcp_client(
    answerer: ZoneAnswerer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while True:
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            reply = answerer.answer(await reader.readexactly(length), "tcp")
            if reply is None:
                continue
            writer.write(struct.pack("!H", len(reply)) + reply)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve_dns(answerer: ZoneAnswerer, host: str = "127.0.0.1") -> tuple[int, list[object]]:
    """Serve on one free port over UDP and TCP; returns the port and the server objects."""
    loop = asyncio.get_running_loop()
    for _ in range(20):
        udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(answerer), local_addr=(host, 0))
        port = udp.get_extra_info("sockname")[1]
        try:
            tcp = await asyncio.start_server(
                lambda r, w: _tcp_client(answerer, r, w), host=host, port=port
            )
        except OSError:
            udp.close()
            continue
        return port, [udp, tcp]
    raise RuntimeError("no free port for the test DNS server")
