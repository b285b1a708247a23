"""The one JSON encoder: orjson with the `fast` extra, else the stdlib; the same JSON either way."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from enum import IntEnum
from pathlib import Path
from typing import Any

import pytest

from checker import encoding
from checker.encoding import dumps, error_body, json_response
from checker.models import (
    AddressReport,
    CertError,
    CertificateFacts,
    DomainReport,
    MailStatus,
    MxReport,
    MxSource,
    ProbeFacts,
    ProbeStatus,
    TlsLevel,
)

ROOT = Path(__file__).resolve().parent.parent
WHEN = datetime(2026, 12, 3, 14, 20, 0, 123456, tzinfo=UTC)


class _Count(IntEnum):
    THREE = 3


def _report() -> DomainReport:
    cert = CertificateFacts(
        subject="CN=mx.bücher.test,O=Ünïcödé GmbH",
        issuer="O=trustme,OU=testing CA",
        san=("mx.bücher.test", "*.bücher.test"),
        not_before=WHEN - timedelta(days=30),
        not_after=WHEN + timedelta(days=60),
        trusted=True,
        hostname_match=False,
        error=CertError.HOSTNAME_MISMATCH,
    )
    facts = ProbeFacts(
        "mx.xn--bcher-kva.test", "2001:db8::25", ProbeStatus.OK, WHEN, 11,
        starttls=True, starttls_reply=220, tls_version="TLSv1.3",
        cipher="TLS_AES_256_GCM_SHA384", certificate=cert,
    )  # fmt: skip
    address = AddressReport(facts, TlsLevel.ENCRYPTED, ("certificate_hostname_mismatch",))
    mx = MxReport("mx.xn--bcher-kva.test", 10, TlsLevel.ENCRYPTED, (address,), (), "alias.test")
    return DomainReport(
        "bücher.test", "xn--bcher-kva.test", MailStatus.ACCEPTS, MxSource.MX,
        TlsLevel.ENCRYPTED, False, ("certificate_hostname_mismatch",),
        ("mx_cname: mx.xn--bcher-kva.test is an alias of alias.test",), (mx,), WHEN,
        WHEN + timedelta(minutes=5), cached=True,
    )  # fmt: skip


def payloads() -> dict[str, Any]:
    """Representative payloads by name (also used by the no-orjson subprocess below)."""
    return {
        "domain_report": _report().to_json(),
        "error": error_body("too_many_recipients", "at most 1000 recipients per request"),
        "unicode": {
            "text": "bücher 日本語 עברית emoji 😀 \u2028\u2029 \x7f \ufeff",
            "escapes": 'quote " backslash \\ slash / ' + "".join(map(chr, range(32))),
            "Ünïcödé key": ["ß", "ǅ", "\U0010ffff"],
        },
        "datetimes": {
            "utc": WHEN,
            "offset": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-5))),
            "early": datetime(999, 1, 1, tzinfo=UTC),
            "list": [WHEN, None],
        },
        "enums": {
            "mail": MailStatus.NULL_MX,
            "levels": [TlsLevel.VERIFIED, TlsLevel.UNKNOWN],
            "summary": {str(TlsLevel.NONE): 2},
            "int_enum": _Count.THREE,
        },
        "nested_tuples": {"t": (1, ("a", (WHEN, (True, None))), ()), "empty": ()},
        "sets": {"set": {3, 1, 2}, "frozen": frozenset({"only"})},
        "scalars": [0, -1, 2**63 - 1, -(2**63), 2**64 - 1, True, False, None, "", [], {}],
        "beyond_64_bits": {"n": 2**70, "m": -(2**65)},
        "int_keys": {1: "one", 2: "two"},
        "top_level_string": "plain ✓",
    }


class TestSameJson:
    """`dumps` (orjson when installed) renders byte for byte what the stdlib path renders."""

    @pytest.mark.parametrize("name", list(payloads()))
    def test_same_text(self, name: str) -> None:
        """Each payload comes out identical to the stdlib rendering."""
        payload = payloads()[name]
        assert dumps(payload) == encoding._stdlib_dumps(payload)

    def test_compact_and_utf8(self) -> None:
        """No spaces after separators, non-ASCII kept as is, datetimes as `…Z` to the second."""
        assert dumps({"a": ["ü", WHEN]}) == '{"a":["ü","2026-12-03T14:20:00Z"]}'

    def test_floats_are_the_same_numbers(self) -> None:
        """Floats may be spelled differently (1e-07 or 1e-7) but parse to the same number."""
        floats = [0.1, -0.0, 1e-7, 2.5e-8, 1e16, 1.7976931348623157e308, 5e-324, 123.456]
        assert json.loads(dumps(floats)) == json.loads(encoding._stdlib_dumps(floats))

    @pytest.mark.parametrize(
        "value",
        [object(), date(2026, 1, 1), {WHEN: 1}, {(1, 2): 3}, b"bytes"],
        ids=["object", "date", "datetime_key", "tuple_key", "bytes"],
    )
    def test_refused_alike(self, value: object) -> None:
        """What the stdlib cannot render raises TypeError on either path."""
        with pytest.raises(TypeError):
            encoding._stdlib_dumps(value)
        with pytest.raises(TypeError):
            dumps(value)

    def test_dataclass_refused(self) -> None:
        """A dataclass is never rendered implicitly: models say what they show in `to_json()`."""

        @dataclass
        class Secretive:
            secret: str = "never"

        with pytest.raises(TypeError):
            dumps(Secretive())

    def test_response_body_and_type(self) -> None:
        """`json_response` sends the same bytes, as `application/json; charset=utf-8`."""
        payload = payloads()["domain_report"]
        response = json_response(payload, 202, {"Retry-After": "2"})
        assert response.body == encoding._stdlib_dumps(payload).encode()
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"
        assert (response.status, response.headers["Retry-After"]) == (202, "2")

    def test_orjson_used_when_installed(self) -> None:
        """With the `fast` extra installed, the encoder is orjson."""
        pytest.importorskip("orjson")
        assert encoding.ENCODER == "orjson"

    @pytest.mark.parametrize("name", ["domain_report", "error", "unicode", "datetimes", "enums"])
    def test_fast_path_taken(self, name: str) -> None:
        """What responses carry is rendered by orjson itself, not by the stdlib fallback."""
        pytest.importorskip("orjson")
        assert encoding._fast(payloads()[name]) is not None


class TestWithoutOrjson:
    """Without orjson the module falls back to the stdlib, with the same output."""

    def test_stdlib_fallback(self) -> None:
        """A process that cannot import orjson renders every payload as this one does."""
        script = (
            "import sys, json\n"
            "sys.modules['orjson'] = None\n"
            "from checker import encoding\n"
            "from tests.test_encoding import payloads\n"
            "out = {n: encoding.dumps(p) for n, p in payloads().items()}\n"
            "print(json.dumps({'encoder': encoding.ENCODER, 'out': out}))\n"
        )
        done = subprocess.run(  # noqa: S603 (our own interpreter)
            [sys.executable, "-c", script],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        result = json.loads(done.stdout)
        assert result["encoder"] == "stdlib"
        assert result["out"] == {n: dumps(p) for n, p in payloads().items()}
