"""Recipients: list splitting, address syntax, IDN domains and deduplication (DESIGN.md)."""

from __future__ import annotations

import email_validator
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from checker.recipients import (
    MAX_ADDRESS_LENGTH,
    MAX_INPUT_LENGTH,
    normalize_address,
    parse_recipient,
    parse_recipients,
    split_list,
)

# Three labels of 63, one of 61 and the dots: a 253-character domain, the longest DNS allows.
_DOMAIN_253 = ".".join(["c" * 63] * 3) + "." + "d" * 61
_LONG_LOCAL = "x" * 100  # over the 64 octets RFC 5321 allows a local part


class TestParseRecipientValid:
    """`parse_recipient` accepts real-world address forms and normalises only the domain."""

    @pytest.mark.parametrize(
        ("text", "address", "ascii_address", "domain_ascii"),
        [
            pytest.param("a@b.com", "a@b.com", "a@b.com", "b.com", id="plain"),
            pytest.param("  a@b.com\t", "a@b.com", "a@b.com", "b.com", id="trimmed"),
            pytest.param("Name <a@b.com>", "a@b.com", "a@b.com", "b.com", id="display-name"),
            pytest.param(
                '"Quoted, Name" <a@b.com>', "a@b.com", "a@b.com", "b.com", id="quoted-display-name"
            ),
            pytest.param("<a@b.com>", "a@b.com", "a@b.com", "b.com", id="angle-brackets-only"),
            pytest.param(
                '"a,b"@x.com', '"a,b"@x.com', '"a,b"@x.com', "x.com", id="quoted-local-comma"
            ),
            pytest.param(
                "Foo.Bar@EXAMPLE.COM",
                "Foo.Bar@example.com",
                "Foo.Bar@example.com",
                "example.com",
                id="domain-lowered-local-kept",
            ),
            pytest.param("a@b.com.", "a@b.com", "a@b.com", "b.com", id="trailing-dot"),
            pytest.param(
                "u@Bücher.Example",
                "u@bücher.example",
                "u@xn--bcher-kva.example",
                "xn--bcher-kva.example",
                id="idn-domain",
            ),
            pytest.param(
                "u@xn--bcher-kva.example",
                "u@bücher.example",
                "u@xn--bcher-kva.example",
                "xn--bcher-kva.example",
                id="a-label-domain",
            ),
            pytest.param("a@x.test", "a@x.test", "a@x.test", "x.test", id="special-use-is-syntax"),
        ],
    )
    def test_valid(self, text: str, address: str, ascii_address: str, domain_ascii: str) -> None:
        """A valid input yields its address, ASCII form and A-label domain and no error."""
        recipient = parse_recipient(text)

        assert recipient.error is None
        assert recipient.input == text
        assert recipient.address == address
        assert recipient.ascii_address == ascii_address
        assert recipient.domain is not None
        assert recipient.domain.ascii == domain_ascii
        assert recipient.smtputf8 is False

    @pytest.mark.parametrize(
        ("text", "address", "key"),
        [
            pytest.param(
                "u@Bücher.Example", "u@bücher.example", "u@xn--bcher-kva.example", id="idn"
            ),
            pytest.param("Ann@X.org", "Ann@x.org", "ann@x.org", id="local-part-case"),
        ],
    )
    def test_key(self, text: str, address: str, key: str) -> None:
        """The key folds the local part's case and uses A-labels; the address keeps the input."""
        recipient = parse_recipient(text)

        assert recipient.address == address
        assert recipient.key == key

    def test_smtputf8_local_part(self) -> None:
        """A non-ASCII local part needs SMTPUTF8 and so has no ASCII form."""
        recipient = parse_recipient("用户@例子.广告")

        assert recipient.error is None
        assert recipient.address == "用户@例子.广告"
        assert recipient.smtputf8 is True
        assert recipient.ascii_address is None
        assert recipient.domain is not None
        assert recipient.domain.ascii == "xn--fsqu00a.xn--4rr70v"
        assert recipient.key == "用户@xn--fsqu00a.xn--4rr70v"


class TestParseRecipientInvalid:
    """`parse_recipient` refuses malformed input with an error and no address."""

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("", id="empty"),
            pytest.param("ab.com", id="no-at"),
            pytest.param("@x.com", id="empty-local"),
            pytest.param("a@", id="empty-domain"),
            pytest.param("a..b@x.com", id="double-dot-local"),
            pytest.param(".a@x.com", id="leading-dot-local"),
            pytest.param("a b@x.com", id="space-in-local"),
            pytest.param("a@1.2.3.4", id="ip-address"),
            pytest.param("a@[1.2.3.4]", id="domain-literal"),
            pytest.param("a@[IPv6:2001:db8::1]", id="ipv6-literal"),
            pytest.param("a@localhost", id="single-label"),
            pytest.param("a@x_y.com", id="underscore-in-domain"),
            pytest.param("a@-x.com", id="leading-hyphen-label"),
            pytest.param("Name <a@b.com", id="unclosed-angle"),
            pytest.param(f"{_LONG_LOCAL}@{_DOMAIN_253}", id="overlong-after-parse"),
            pytest.param("x" * (2 * MAX_ADDRESS_LENGTH + 1), id="overlong-input"),
        ],
    )
    def test_invalid(self, text: str) -> None:
        """An invalid input carries a non-empty error and neither address nor domain."""
        recipient = parse_recipient(text)

        assert recipient.error
        assert recipient.address is None
        assert recipient.ascii_address is None
        assert recipient.domain is None

    def test_overlong_local_part(self) -> None:
        """A local part over 64 octets is refused, whatever the domain."""
        for text in (f"{_LONG_LOCAL}@b.com", f"{_LONG_LOCAL}@{_DOMAIN_253}"):
            assert parse_recipient(text).error == "the local part is longer than 64 octets"

    def test_longest_domain_fits(self) -> None:
        """An address at the limits of both parts (64 + 1 + 253 octets) is accepted."""
        recipient = parse_recipient(f"{'x' * 64}@{_DOMAIN_253}")

        assert recipient.error is None
        assert recipient.address == f"{'x' * 64}@{_DOMAIN_253}"

    def test_overlong_input_is_truncated_in_echo(self) -> None:
        """A huge input is echoed only up to MAX_ADDRESS_LENGTH characters."""
        recipient = parse_recipient("x" * 10_000)

        assert recipient.error == "address is too long"
        assert len(recipient.input) == MAX_ADDRESS_LENGTH

    @given(st.one_of(st.text(max_size=400), st.builds("{}@{}".format, st.text(), st.text())))
    def test_never_raises(self, text: str) -> None:
        """Any text parses to an error or to an address ending in the domain's Unicode form."""
        recipient = parse_recipient(text)

        if recipient.error is None:
            assert recipient.address is not None
            assert recipient.domain is not None
            assert recipient.address.rpartition("@")[2] == recipient.domain.unicode
        else:
            assert recipient.address is None


class TestSplitList:
    """`split_list` cuts a typed list at commas and semicolons outside quotes and brackets."""

    @pytest.mark.parametrize(
        ("text", "pieces"),
        [
            pytest.param("a@b.com", ["a@b.com"], id="one"),
            pytest.param("a@b.com, c@d.com", ["a@b.com", "c@d.com"], id="comma"),
            pytest.param("a@b.com; c@d.com", ["a@b.com", "c@d.com"], id="semicolon"),
            pytest.param("a@b.com,c@d.com;e@f.com", ["a@b.com", "c@d.com", "e@f.com"], id="mixed"),
            pytest.param(" , ;a@b.com,, ; ", ["a@b.com"], id="empty-pieces-dropped"),
            pytest.param("", [], id="empty"),
            pytest.param(
                '"Doe, Jane" <j@x.com>, k@y.com',
                ['"Doe, Jane" <j@x.com>', "k@y.com"],
                id="comma-in-quotes",
            ),
            pytest.param(
                '"a;b"@x.com; k@y.com', ['"a;b"@x.com', "k@y.com"], id="semicolon-in-quotes"
            ),
            pytest.param("<a,b@x.com>; k@y.com", ["<a,b@x.com>", "k@y.com"], id="comma-in-angles"),
            pytest.param(
                r'"a\",b"@x.com, k@y.com', [r'"a\",b"@x.com', "k@y.com"], id="escaped-quote"
            ),
        ],
    )
    def test_split(self, text: str, pieces: list[str]) -> None:
        """The pieces come back trimmed, in order, without empty ones."""
        assert list(split_list(text)) == pieces


class TestParseRecipients:
    """`parse_recipients` parses lists, keeps input order and drops duplicate addresses."""

    def test_lists_in_one_input(self) -> None:
        """Comma- and semicolon-separated entries in one string come back in order."""
        recipients = parse_recipients(["c@z.com, a@y.com; Name <b@x.com>"])

        assert [r.address for r in recipients] == ["c@z.com", "a@y.com", "b@x.com"]

    def test_order_across_inputs(self) -> None:
        """Several inputs are parsed one after the other, keeping their order."""
        recipients = parse_recipients(["b@x.com", "a@x.com; c@x.com", "d@x.com"])

        assert [r.address for r in recipients] == ["b@x.com", "a@x.com", "c@x.com", "d@x.com"]

    @pytest.mark.parametrize(
        ("first", "second"),
        [
            pytest.param("a@b.com", "a@b.com", id="identical"),
            pytest.param("a@b.com", "a@B.COM", id="domain-case"),
            pytest.param("a@b.com", "Name <a@b.com>", id="display-name"),
            pytest.param("u@bücher.example", "u@xn--bcher-kva.example", id="unicode-vs-a-label"),
            pytest.param("u@BÜCHER.example", "u@xn--bcher-kva.EXAMPLE", id="idn-case"),
            pytest.param("Ann@x.org", "ann@x.org", id="local-part-case"),
        ],
    )
    def test_duplicates_removed(self, first: str, second: str) -> None:
        """One mailbox, whatever the case or domain form, appears once: the first."""
        recipients = parse_recipients([f"{first}, {second}", "z@z.com"])

        assert [r.input for r in recipients] == [first, "z@z.com"]

    def test_different_local_parts_kept(self) -> None:
        """Different local parts at one domain are different recipients."""
        recipients = parse_recipients(["a@b.com, a.b@b.com, a+b@B.com"])

        assert [r.address for r in recipients] == ["a@b.com", "a.b@b.com", "a+b@b.com"]

    def test_invalid_entries_kept(self) -> None:
        """Invalid entries stay in place, echo their input and carry an error."""
        recipients = parse_recipients(["a@b.com, not-an-address; c@@d, e@f.com"])

        assert [r.input for r in recipients] == ["a@b.com", "not-an-address", "c@@d", "e@f.com"]
        assert [r.error is None for r in recipients] == [True, False, False, True]
        assert recipients[1].address is None

    def test_distinct_invalid_entries_not_merged(self) -> None:
        """Two different invalid inputs are both reported."""
        recipients = parse_recipients(["bad1", "bad2"])

        assert [r.input for r in recipients] == ["bad1", "bad2"]

    def test_overlong_input(self) -> None:
        """An input longer than MAX_INPUT_LENGTH becomes one invalid entry, not a parsed list."""
        text = ",".join(["a@b.com"] * (MAX_INPUT_LENGTH // 8 + 1))
        assert len(text) > MAX_INPUT_LENGTH

        recipients = parse_recipients([text, "c@d.com"])

        assert len(recipients) == 2
        assert recipients[0].error
        assert recipients[0].address is None
        assert len(recipients[0].input) < MAX_INPUT_LENGTH
        assert recipients[1].address == "c@d.com"

    def test_input_at_limit_is_parsed(self) -> None:
        """An input of exactly MAX_INPUT_LENGTH characters is still parsed as a list."""
        text = "a@b.com, c@d.com".ljust(MAX_INPUT_LENGTH, ",")

        recipients = parse_recipients([text])

        assert [r.address for r in recipients] == ["a@b.com", "c@d.com"]


class TestNormalizeAddress:
    """`normalize_address` gives the canonical key of one address or raises ValueError."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param("a@b.com", "a@b.com", id="plain"),
            pytest.param(" Foo@EXAMPLE.com ", "foo@example.com", id="lower-cased"),
            pytest.param("Name <a@b.com>", "a@b.com", id="display-name"),
            pytest.param("u@Bücher.example", "u@xn--bcher-kva.example", id="idn-to-a-label"),
            pytest.param("U@XN--BCHER-KVA.example", "u@xn--bcher-kva.example", id="a-label-kept"),
            pytest.param("用户@例子.广告", "用户@xn--fsqu00a.xn--4rr70v", id="smtputf8"),
        ],
    )
    def test_canonical(self, text: str, expected: str) -> None:
        """The result equals `Recipient.key`: lower-case local part and A-label domain."""
        assert normalize_address(text) == expected
        assert normalize_address(text) == parse_recipient(text).key

    @pytest.mark.parametrize("text", ["", "ab.com", "a..b@x.com", "a@localhost"])
    def test_invalid_raises(self, text: str) -> None:
        """An invalid address raises ValueError with the parser's message."""
        with pytest.raises(ValueError, match=r".+"):
            normalize_address(text)


class TestDotAtomFastPath:
    """The fast path for plain ASCII local parts agrees with email-validator."""

    @given(
        st.text(
            alphabet=st.sampled_from("abcXYZ019!#$%&'*+/=?^_`{|}~-." + '"\\ (),:;<>@[]é'),
            min_size=1,
            max_size=30,
        )
    )
    def test_same_verdict(self, local: str) -> None:
        """Any local part is valid by the fast path exactly when email-validator accepts it."""
        assume(local == local.strip() and len(local.encode()) <= 64)  # trimming, length: ours
        try:
            checked = email_validator.validate_email(
                f"{local}@example.net",
                allow_smtputf8=True,
                allow_quoted_local=True,
                check_deliverability=False,
            )
            expected: str | None = checked.local_part
        except email_validator.EmailNotValidError:
            expected = None
        recipient = parse_recipient(f"{local}@example.net")
        assert (recipient.address.rpartition("@")[0] if recipient.address else None) == expected
