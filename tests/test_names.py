"""Domain names: normalisation to A-labels and the special-use rule (DESIGN.md, input domain)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from checker.names import (
    MAX_INPUT_LENGTH,
    SPECIAL_USE,
    DomainName,
    InvalidDomain,
    is_special_use,
    normalize_domain,
)

# 4 labels of 50 plus "com" is 207 characters; 5 labels of 49 plus "com" is 253; of 50, 258.
_NAME_253 = ".".join(["a" * 49] * 5) + ".com"
_NAME_258 = ".".join(["a" * 50] * 5) + ".com"
_LABEL_63 = "a" * 63
_LABEL_64 = "a" * 64


class TestNormalizeDomain:
    """`normalize_domain` turns user input into a Unicode form and an A-label form."""

    @pytest.mark.parametrize(
        ("text", "unicode", "ascii_name"),
        [
            pytest.param("example.com", "example.com", "example.com", id="plain"),
            pytest.param("  example.com\t\n", "example.com", "example.com", id="trimmed"),
            pytest.param("Example.COM", "example.com", "example.com", id="upper-case"),
            pytest.param("example.com.", "example.com", "example.com", id="trailing-dot"),
            pytest.param(" MX.Example.Com. ", "mx.example.com", "mx.example.com", id="all-at-once"),
            pytest.param("bücher.example", "bücher.example", "xn--bcher-kva.example", id="idn"),
            pytest.param(
                "BÜCHER.example", "bücher.example", "xn--bcher-kva.example", id="idn-upper"
            ),
            pytest.param(
                "xn--bcher-kva.example", "bücher.example", "xn--bcher-kva.example", id="a-label"
            ),
            pytest.param(
                "XN--BCHER-KVA.EXAMPLE", "bücher.example", "xn--bcher-kva.example", id="a-label-up"
            ),
            # UTS-46 nontransitional (IDNA 2008) keeps ß; transitional processing would give "ss".
            pytest.param("straße.de", "straße.de", "xn--strae-oqa.de", id="sharp-s-kept"),
            pytest.param(
                "\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com",
                "example.com",
                "example.com",
                id="fullwidth-mapped",
            ),
            pytest.param("a.xn--p1ai", "a.рф", "a.xn--p1ai", id="idn-tld"),
            pytest.param("example.com\u3002", "example.com", "example.com", id="ideographic-dot"),
            pytest.param(
                "bücher.example\uff0e",
                "bücher.example",
                "xn--bcher-kva.example",
                id="fullwidth-dot",
            ),
            pytest.param(
                "a-b.example.com", "a-b.example.com", "a-b.example.com", id="inner-hyphen"
            ),
            pytest.param("123.example", "123.example", "123.example", id="numeric-first-label"),
            pytest.param(f"{_LABEL_63}.com", f"{_LABEL_63}.com", f"{_LABEL_63}.com", id="label-63"),
            pytest.param(_NAME_253, _NAME_253, _NAME_253, id="name-253"),
        ],
    )
    def test_valid(self, text: str, unicode: str, ascii_name: str) -> None:
        """A usable domain comes back trimmed, lower-cased, undotted and in both forms."""
        assert normalize_domain(text) == DomainName(unicode=unicode, ascii=ascii_name)

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("", id="empty"),
            pytest.param("   \t ", id="whitespace"),
            pytest.param(".", id="only-dot"),
            pytest.param("192.0.2.1", id="ipv4"),
            pytest.param("2001:db8::1", id="ipv6"),
            pytest.param("::1", id="ipv6-loopback"),
            pytest.param("[192.0.2.1]", id="bracketed-ipv4"),
            pytest.param("[2001:db8::1]", id="bracketed-ipv6"),
            pytest.param("[IPv6:2001:db8::1]", id="address-literal-ipv6"),
            pytest.param("localhost", id="single-label"),
            pytest.param("com.", id="single-label-dotted"),
            pytest.param(f"{_LABEL_64}.com", id="label-64"),
            pytest.param(_NAME_258, id="name-over-253"),
            pytest.param("a" * (MAX_INPUT_LENGTH + 1), id="over-max-input"),
            pytest.param(" " * MAX_INPUT_LENGTH + "example.com", id="padded-over-max-input"),
            pytest.param("mail_host.example.com", id="underscore"),
            pytest.param("mail host.example.com", id="space"),
            pytest.param("user@example.com", id="at-sign"),
            pytest.param("-mx.example.com", id="leading-hyphen"),
            pytest.param("mx-.example.com", id="trailing-hyphen"),
            pytest.param("example.123", id="numeric-tld"),
            pytest.param("1.2.3.4.5", id="numeric-dotted"),
            pytest.param("a..example.com", id="empty-label"),
            pytest.param("example.com..", id="two-trailing-dots"),
            pytest.param(".example.com", id="leading-dot"),
            pytest.param("xn--zz.com", id="bad-a-label"),
        ],
    )
    def test_invalid(self, text: str) -> None:
        """Input that is not a usable mail domain raises InvalidDomain with its error code."""
        with pytest.raises(InvalidDomain) as info:
            normalize_domain(text)
        assert info.value.code == "invalid_domain"

    def test_max_input_length_is_inclusive(self) -> None:
        """Input of exactly MAX_INPUT_LENGTH characters is judged on its content, not refused."""
        padded = "example.com".rjust(MAX_INPUT_LENGTH)
        assert normalize_domain(padded).ascii == "example.com"

    def test_invalid_domain_is_a_value_error(self) -> None:
        """InvalidDomain is a ValueError, so callers that expect bad values catch it."""
        with pytest.raises(ValueError, match="IP address"):
            normalize_domain("192.0.2.1")

    @given(st.text(max_size=300))
    def test_result_is_canonical(self, text: str) -> None:
        """Any text is refused or gives a lower-case name of at most 253 that maps to itself."""
        try:
            name = normalize_domain(text)
        except InvalidDomain:
            return
        assert name.ascii == name.ascii.lower()
        assert name.ascii.isascii()
        assert len(name.ascii) <= 253
        assert normalize_domain(name.ascii) == name
        assert normalize_domain(name.unicode) == name


class TestIsSpecialUse:
    """`is_special_use` applies the RFC 6761/6762/7686 suffixes unless they are allowed."""

    @pytest.mark.parametrize(
        ("ascii_name", "allowed", "expected"),
        [
            pytest.param("example.com", (), False, id="ordinary"),
            pytest.param("example", (), True, id="bare-example"),
            pytest.param("a.example", (), True, id="under-example"),
            pytest.param("a.b.test", (), True, id="deep-under-test"),
            pytest.param("foo.invalid", (), True, id="invalid"),
            pytest.param("foo.localhost", (), True, id="localhost"),
            pytest.param("printer.local", (), True, id="mdns-local"),
            pytest.param("abc.onion", (), True, id="onion"),
            pytest.param("1.2.0.192.in-addr.arpa", (), True, id="arpa"),
            pytest.param("example.example.com", (), False, id="label-not-suffix"),
            pytest.param("mytest", (), False, id="suffix-not-label"),
            pytest.param("a.latest", (), False, id="ends-with-text-not-label"),
            pytest.param("a.test", ("test",), False, id="allowed"),
            pytest.param("test", ("test",), False, id="allowed-bare"),
            pytest.param("a.example", ("test",), True, id="other-not-allowed"),
            pytest.param("a.b.test", ("b.test",), False, id="allowed-deeper-suffix"),
            pytest.param("a.c.test", ("b.test",), True, id="sibling-of-allowed"),
            pytest.param("a.example", ("ample",), True, id="allowed-is-whole-labels"),
            pytest.param("a.test", ("a.test", "example"), False, id="allow-list-of-two"),
            pytest.param("a.example", ("a.test", "example"), False, id="allow-list-second"),
            pytest.param("a.latest", ("test",), False, id="allow-does-not-hurt-ordinary"),
        ],
    )
    def test_table(self, ascii_name: str, allowed: tuple[str, ...], expected: bool) -> None:
        """A name is special-use when a special suffix covers it and no allowed suffix does."""
        assert is_special_use(ascii_name, allowed) is expected

    @pytest.mark.parametrize("suffix", SPECIAL_USE)
    def test_every_listed_suffix(self, suffix: str) -> None:
        """Each listed special-use suffix covers names below it."""
        assert is_special_use(f"mail.{suffix}") is True

    def test_listed_suffixes(self) -> None:
        """The special-use list is exactly the one DESIGN.md names."""
        assert set(SPECIAL_USE) == {
            "test",
            "example",
            "invalid",
            "localhost",
            "local",
            "onion",
            "arpa",
        }
