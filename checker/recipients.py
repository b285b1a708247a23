"""Recipient parsing: lists, display names, address syntax (email-validator) and IDN domains."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import email_validator

from checker.names import DomainName, InvalidDomain, normalize_domain

MAX_ADDRESS_LENGTH = 320  # RFC 3696 errata: 64 + 1 + 255
MAX_LOCAL_PART = 64  # RFC 5321 4.5.3.1.1
MAX_INPUT_LENGTH = 4096  # one input string, which may hold a list
# email-validator judges the local part; the domain is judged by our own IDNA normaliser, the
# one the domain checker uses (email-validator would refuse special-use names outright, while
# DESIGN.md reports them as undeliverable). This stand-in domain is always valid.
_STAND_IN_DOMAIN = "mailpreflight.net"
# RFC 5322 dot-atom of ASCII atext: what nearly every real address has. email-validator accepts
# exactly these unchanged (a property test holds the two together); anything else goes to it.
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")


@dataclass(frozen=True, slots=True)
class Recipient:
    """One parsed recipient: valid with an address and a domain, or invalid with an error."""

    input: str
    address: str | None = None  # local part as typed, domain in its Unicode form
    ascii_address: str | None = None  # None when the local part needs SMTPUTF8
    domain: DomainName | None = None
    smtputf8: bool = False
    error: str | None = None

    @property
    def key(self) -> str:
        """What deduplication, suppressions and keys compare: `local@a-label.domain`, lower-case.

        Local parts are case-sensitive in RFC 5321, but no mailbox provider treats them so, and
        a suppression for Ann@x.org must stop mail to ann@x.org.
        """
        if self.domain is None or self.address is None:
            return "\0" + self.input
        return self.address.rpartition("@")[0].lower() + "@" + self.domain.ascii


def split_list(text: str) -> Iterator[str]:
    """Split on commas and semicolons outside quotes and angle brackets; drop empty pieces."""
    piece: list[str] = []
    quoted = escaped = False
    depth = 0
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth = max(0, depth - 1)
        elif not quoted and depth == 0 and ch in ",;":
            yield from _nonempty("".join(piece))
            piece = []
            continue
        piece.append(ch)
    yield from _nonempty("".join(piece))


def _nonempty(piece: str) -> Iterator[str]:
    if piece.strip():
        yield piece.strip()


def parse_recipient(text: str) -> Recipient:
    """Parse `addr@x` or `Name <addr@x>` into a Recipient (invalid ones carry `error`)."""
    if len(text) > MAX_ADDRESS_LENGTH * 2:
        return Recipient(text[:MAX_ADDRESS_LENGTH], error="address is too long")
    address = _strip_display_name(text.strip())
    local, at, domain_text = address.rpartition("@")
    if not at or not local:
        return Recipient(text, error="an address needs a local part, an @ and a domain")
    try:
        domain = normalize_domain(domain_text)
    except InvalidDomain as exc:
        return Recipient(text, error=f"domain: {exc}")
    if _DOT_ATOM.match(local):
        local_part, smtputf8 = local, False  # the common case, decided without the library
    else:
        try:
            checked = email_validator.validate_email(
                f"{local}@{_STAND_IN_DOMAIN}",
                allow_smtputf8=True,
                allow_quoted_local=True,
                allow_display_name=False,
                allow_domain_literal=False,
                check_deliverability=False,
            )
        except email_validator.EmailNotValidError as exc:
            return Recipient(text, error=str(exc))
        local_part, smtputf8 = checked.local_part, checked.smtputf8
    if len(local_part.encode()) > MAX_LOCAL_PART:
        return Recipient(text, error=f"the local part is longer than {MAX_LOCAL_PART} octets")
    full = f"{local_part}@{domain.unicode}"
    if len(f"{local_part}@{domain.ascii}".encode()) > MAX_ADDRESS_LENGTH:
        return Recipient(text, error="address is too long")
    ascii_address = None if smtputf8 else f"{local_part}@{domain.ascii}"
    return Recipient(text, full, ascii_address, domain, smtputf8)


def _strip_display_name(text: str) -> str:
    if text.endswith(">") and "<" in text:
        return text[text.rindex("<") + 1 : -1].strip()
    return text


def parse_recipients(inputs: Iterable[str]) -> list[Recipient]:
    """Parse every input (each may be a list), keep the input order, drop duplicates."""
    seen: set[str] = set()
    recipients: list[Recipient] = []
    for item in inputs:
        if len(item) > MAX_INPUT_LENGTH:
            recipients.append(Recipient(item[:64] + "…", error="input is too long"))
            continue
        for piece in split_list(item):
            recipient = parse_recipient(piece)
            if recipient.key not in seen:
                seen.add(recipient.key)
                recipients.append(recipient)
    return recipients


def normalize_address(text: str) -> str:
    """The canonical form of one address (`Recipient.key`); raise ValueError when invalid."""
    recipient = parse_recipient(text)
    if recipient.address is None:
        raise ValueError(recipient.error or "invalid address")
    return recipient.key
