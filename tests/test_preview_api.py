"""POST /v1/preview over the hermetic world: every policy × domain outcome × key × suppression."""

from __future__ import annotations

import io
import itertools
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from checker.keys import KeyType, ParsedKey
from checker.wiring import STORE_KEY
from tests.conftest import ClientFactory
from tests.keyfactory import pgp_public_key, smime_certificate
from tests.world import World

USER = "sender@corp.test"
OTHER_USER = "other@corp.test"

# Outcome → (domain, twin domain used for the domain-level suppression, expected tls_level)
OUTCOMES = {
    "verified": ("good.test", "supgood.test", "verified"),
    "encrypted": ("selfsigned.test", "supselfsigned.test", "encrypted"),
    "none": ("nostarttls.test", "supnostarttls.test", "none"),
    "unknown": ("refused.test", "suprefused.test", "unknown"),
    "dns_error": ("servfail.test", "supservfail.test", "unknown"),
    "null_mx": ("nullmx.test", "supnullmx.test", "unknown"),
    "nxdomain": ("nxdomain.test", "supnxdomain.test", "unknown"),
}
KEYS = ("nokey", "pgp", "smime", "expired")
SUPPRESSIONS = ("nosup", "account_address", "account_domain", "user_address", "other_user")

FB = "fallback"  # pgp, else smime, else escrow — by the key state
# The rules of DESIGN.md, written out per policy and outcome (without keys or suppressions).
EXPECTED = {
    "tls_or_fallback": {
        "verified": "tls",
        "encrypted": FB,
        "none": FB,
        "unknown": FB,
        "dns_error": FB,
        "null_mx": "undeliverable",
        "nxdomain": "undeliverable",
    },
    "tls_exclusive": {
        "verified": "tls",
        "encrypted": "blocked",
        "none": "blocked",
        "unknown": "blocked",
        "dns_error": "blocked",
        "null_mx": "undeliverable",
        "nxdomain": "undeliverable",
    },
    "no_tls_only": {
        "verified": FB,
        "encrypted": FB,
        "none": FB,
        "unknown": FB,
        "dns_error": FB,
        "null_mx": "undeliverable",
        "nxdomain": "undeliverable",
    },
    "opportunistic": {
        "verified": "tls",
        "encrypted": "tls",
        "none": "none",
        "unknown": "none",
        "dns_error": "none",
        "null_mx": "undeliverable",
        "nxdomain": "undeliverable",
    },
}
FALLBACK_BY_KEY = {"nokey": "escrow", "pgp": "pgp", "smime": "smime", "expired": "escrow"}


@dataclass(frozen=True)
class Case:
    """One recipient of the matrix."""

    outcome: str
    key: str
    suppression: str

    @property
    def domain(self) -> str:
        plain, twin, _ = OUTCOMES[self.outcome]
        return twin if self.suppression == "account_domain" else plain

    @property
    def address(self) -> str:
        return f"{self.key}.{self.suppression}@{self.domain}"

    def expected(self, policy: str) -> str:
        if self.suppression in ("account_address", "account_domain", "user_address"):
            return "suppressed"
        method = EXPECTED[policy][self.outcome]
        return FALLBACK_BY_KEY[self.key] if method == FB else method


CASES = [Case(*c) for c in itertools.product(OUTCOMES, KEYS, SUPPRESSIONS)]


@pytest.fixture(scope="module")
def key_texts() -> dict[str, str]:
    """Keys for every matrix address that has one (generated once per module)."""
    texts = {}
    for case in CASES:
        if case.key == "pgp":
            texts[case.address] = pgp_public_key(case.address)
        elif case.key == "smime":
            texts[case.address] = smime_certificate(case.address)
    return texts


async def _arrange(client: TestClient[Any, Any], key_texts: dict[str, str]) -> None:
    """Store the matrix's keys and suppressions through the API (expired keys directly)."""
    for case in CASES:
        if case.key in ("pgp", "smime"):
            body = {"type": case.key, "key": key_texts[case.address]}
            response = await client.put(f"/v1/users/{USER}/keys/{case.address}", json=body)
            assert response.status == 201, await response.text()
        elif case.key == "expired":
            parsed = ParsedKey(
                KeyType.PGP, "ab" * 20, None, datetime.now(UTC) - timedelta(days=1), ()
            )
            await client.app[STORE_KEY].put_key(USER, case.address, parsed, "expired")
        entry: dict[str, str] = {"reason": "manual"}
        path = "/v1/suppressions"
        if case.suppression == "account_address":
            entry["address"] = case.address
        elif case.suppression == "account_domain":
            entry["domain"] = case.domain
        elif case.suppression in ("user_address", "other_user"):
            entry["address"] = case.address
            owner = USER if case.suppression == "user_address" else OTHER_USER
            path = f"/v1/users/{owner}/suppressions"
        else:
            continue
        response = await client.post(path, json=entry)
        assert response.status == 201, await response.text()


class TestMatrix:
    """Every policy × domain outcome × key state × suppression gets the method DESIGN.md says."""

    @pytest.mark.parametrize("policy", list(EXPECTED))
    async def test_matrix(
        self, make_client: ClientFactory, key_texts: dict[str, str], policy: str
    ) -> None:
        """One preview of all 140 matrix recipients under `policy`."""
        client = await make_client()
        await _arrange(client, key_texts)
        body = {"recipients": [c.address for c in CASES], "policy": policy, "user": USER}
        response = await client.post("/v1/preview", json=body)
        assert response.status == 200, await response.text()
        preview = await response.json()
        assert preview["policy"] == policy
        results = preview["recipients"]
        assert [r["input"] for r in results] == [c.address for c in CASES]
        for case, result in zip(CASES, results, strict=True):
            assert result["method"] == case.expected(policy), (case, result)
            self._explains(case, result)
        assert preview["summary"] == dict(Counter(r["method"] for r in results))

    @staticmethod
    def _explains(case: Case, result: dict[str, Any]) -> None:
        """The reason, level, key and suppression fields agree with the method."""
        if result["method"] == "suppressed":
            scope = "user" if case.suppression == "user_address" else "account"
            match = "domain" if case.suppression == "account_domain" else "address"
            assert result["suppression"] == {"scope": scope, "match": match}
            return
        assert result["suppression"] is None
        assert result["tls_level"] == OUTCOMES[case.outcome][2]
        if result["method"] in ("pgp", "smime"):
            assert result["key"]["type"] == result["method"]
            assert result["key"]["address"] == case.address
        else:
            assert result["key"] is None
        if case.outcome == "dns_error":
            assert result["reason"] == "dns_error"
        if result["method"] == "undeliverable":
            assert result["reason"] in ("null_mx", "no_such_domain")


class TestPreview:
    """Preview behaviour beyond the matrix."""

    async def test_without_user(self, make_client: ClientFactory) -> None:
        """Without a user only account suppressions apply, and no keys."""
        client = await make_client()
        await client.post(
            "/v1/users/a@corp.test/suppressions",
            json={"address": "x@nostarttls.test", "reason": "bounce"},
        )
        body = {"recipients": ["x@nostarttls.test", "y@good.test"]}
        preview = await (await client.post("/v1/preview", json=body)).json()
        assert preview["policy"] == "tls_or_fallback"
        assert [r["method"] for r in preview["recipients"]] == ["escrow", "tls"]

    async def test_lists_names_and_duplicates(self, make_client: ClientFactory) -> None:
        """Lists in one string, display names and duplicates are parsed, deduplicated, echoed."""
        client = await make_client()
        body = {"recipients": ["Ann <a@good.test>; b@GOOD.test", "a@good.test", "nope"]}
        preview = await (await client.post("/v1/preview", json=body)).json()
        assert [r["input"] for r in preview["recipients"]] == [
            "Ann <a@good.test>",
            "b@GOOD.test",
            "nope",
        ]
        assert [r["method"] for r in preview["recipients"]] == ["tls", "tls", "invalid"]
        assert preview["recipients"][2]["error"]
        assert preview["summary"] == {"tls": 2, "invalid": 1}

    async def test_pending_check_never_tls(self, make_client: ClientFactory) -> None:
        """A domain not checked within wait is pending: the policy's fallback, never TLS."""
        client = await make_client()
        body = {"recipients": ["a@slowgreeting.test"], "policy": "tls_exclusive"}
        preview = await (await client.post("/v1/preview?wait=0", json=body)).json()
        result = preview["recipients"][0]
        assert (result["method"], result["reason"]) == ("blocked", "check_pending")

    async def test_cached_domains_need_no_network(
        self, make_client: ClientFactory, world: World
    ) -> None:
        """100 recipients over 20 already-cached domains: no DNS query and no SMTP connection."""
        domains = [
            "good.test", "shared.test", "onerefused.test", "mixed.test", "nullmixed.test",
            "implicit.test", "cname.test", "overtcp.test", "xn--bcher-kva.test",
            "halfdangling.test", "concurrent.test", "concurrent2.test", "nostarttls.test",
            "selfsigned.test", "expired.test", "wrongname.test", "tls10.test",
            "starttls454.test", "ehlo500.test", "nodata.test",
        ]  # fmt: skip
        client = await make_client()
        warm = {"recipients": [f"warm@{d}" for d in domains]}
        assert (await client.post("/v1/preview", json=warm)).status == 200
        connections = sum(world.connections.values())
        queries = len(world.answerer.queries)
        body = {"recipients": [f"user{n}@{d}" for d in domains for n in range(5)]}
        response = await client.post("/v1/preview", json=body)
        preview = await response.json()
        assert len(preview["recipients"]) == 100
        assert sum(world.connections.values()) == connections
        assert len(world.answerer.queries) == queries


class TestBadInput:
    """Bad preview requests get a JSON 4xx with a stable code."""

    @pytest.mark.parametrize(
        ("body", "status", "code"),
        [
            (b"{not json", 400, "invalid_json"),
            (b"", 400, "invalid_json"),
            (b"[1, 2]", 400, "invalid_request"),
            (b'{"recipients": "a@good.test", "policy": 3}', 400, "invalid_request"),
            (b'{"recipients": 5}', 400, "invalid_request"),
            (b'{"recipients": [1]}', 400, "invalid_request"),
            (b'{"recipients": []}', 400, "invalid_request"),
            (b"{}", 400, "invalid_request"),
            (b'{"recipients": ["a@good.test"], "policy": "yolo"}', 400, "invalid_policy"),
            (b'{"recipients": ["a@good.test"], "user": "not-an-address"}', 400, "invalid_user"),
            (b'{"recipients": ["a@good.test"], "user": 7}', 400, "invalid_request"),
        ],
    )
    async def test_rejected(
        self, make_client: ClientFactory, body: bytes, status: int, code: str
    ) -> None:
        """Malformed JSON, wrong types, unknown policy and bad user are refused."""
        client = await make_client()
        response = await client.post(
            "/v1/preview", data=body, headers={"Content-Type": "application/json"}
        )
        assert response.status == status
        assert (await response.json())["error"]["code"] == code

    async def test_too_many_recipients(self, make_client: ClientFactory) -> None:
        """More recipients than CHECKER_MAX_RECIPIENTS is 413, counted after list splitting."""
        client = await make_client(max_recipients="10")
        one_string = ", ".join(f"u{n}@good.test" for n in range(11))
        response = await client.post("/v1/preview", json={"recipients": [one_string]})
        assert response.status == 413
        assert (await response.json())["error"]["code"] == "too_many_recipients"

    async def test_oversized_body(self, make_client: ClientFactory) -> None:
        """A body over the size limit is a JSON 413."""
        client = await make_client()
        big = b'{"recipients": ["' + b"a" * (2 * 1024 * 1024) + b'"]}'
        response = await client.post("/v1/preview", data=io.BytesIO(big))
        assert response.status == 413
        assert (await response.json())["error"]["code"] == "payload_too_large"
