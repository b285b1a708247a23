"""Domain names: normalisation to A-labels (IDNA 2008 / UTS-46) and the special-use rule."""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass

import idna

MAX_INPUT_LENGTH = 1024
_LDH_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")

# RFC 6761 / 6762 / 7686 names that never receive mail on the public internet.
SPECIAL_USE = ("test", "example", "invalid", "localhost", "local", "onion", "arpa")


class InvalidDomain(ValueError):
    """Input that is not a usable mail domain; the edge turns it into a 400."""

    code = "invalid_domain"


@dataclass(frozen=True, slots=True)
class DomainName:
    """A domain as the user typed it (Unicode form) and as DNS knows it (A-labels)."""

    unicode: str
    ascii: str


@functools.lru_cache(maxsize=65_536)
def normalize_domain(text: str) -> DomainName:
    """Trim, lower-case, drop one trailing dot and convert to A-labels; raise InvalidDomain.

    Cached: batch audits meet the same few thousand domains a hundred thousand times, and IDNA
    processing is the most expensive step of parsing a recipient.
    """
    if len(text) > MAX_INPUT_LENGTH:
        raise InvalidDomain("domain name is too long")
    try:
        # UTS-46 mapping first, so that ideographic and full-width dots count as dots.
        name = idna.uts46_remap(text.strip(), std3_rules=False, transitional=False).lower()
    except (idna.IDNAError, UnicodeError) as exc:
        raise InvalidDomain(f"not a valid domain name: {exc}") from None
    name = name[:-1] if name.endswith(".") else name
    if not name:
        raise InvalidDomain("domain name is empty")
    if _is_ip_literal(name):
        raise InvalidDomain("an IP address is not a mail domain")
    try:
        ascii_name = idna.encode(name, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError) as exc:
        raise InvalidDomain(f"not a valid domain name: {exc}") from None
    _check_ascii(ascii_name)
    try:
        unicode_name = idna.decode(ascii_name)
    except (idna.IDNAError, UnicodeError) as exc:
        raise InvalidDomain(f"not a valid domain name: {exc}") from None
    return DomainName(unicode=unicode_name, ascii=ascii_name)


def _is_ip_literal(name: str) -> bool:
    candidate = name[1:-1] if name.startswith("[") and name.endswith("]") else name
    candidate = candidate.removeprefix("ipv6:")
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


def _check_ascii(name: str) -> None:
    if len(name) > 253:
        raise InvalidDomain("domain name is longer than 253 characters")
    labels = name.split(".")
    if len(labels) < 2:
        raise InvalidDomain("a single-label name is not a mail domain")
    for label in labels:
        if not _LDH_LABEL.match(label):
            raise InvalidDomain(f"label {label[:63]!r} is not a valid host name label")
    if labels[-1].isdigit():
        raise InvalidDomain("the top-level label cannot be numeric")


def is_special_use(ascii_name: str, allowed: tuple[str, ...] = ()) -> bool:
    """True when the name falls under a special-use suffix that is not explicitly allowed."""
    if any(ascii_name == a or ascii_name.endswith("." + a) for a in allowed):
        return False
    return any(ascii_name == s or ascii_name.endswith("." + s) for s in SPECIAL_USE)


def is_hostname(name: str) -> bool:
    """True for an A-label host name of letter-digit-hyphen labels (what an MX target must be)."""
    labels = name.rstrip(".").split(".")
    return len(name) <= 253 and all(_LDH_LABEL.match(label) for label in labels)
