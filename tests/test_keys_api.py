"""Known recipient keys over HTTP: PUT, GET, DELETE, list; validation; durability."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ClientFactory
from tests.keyfactory import pem_private_key, pgp_public_key, pgp_secret_key, smime_certificate

BASE = "/v1/users/sender@corp.test/keys"
BOB = "bob@example.org"


@pytest.fixture(scope="module")
def bob_pgp() -> str:
    """An OpenPGP public key for Bob."""
    return pgp_public_key(BOB)


@pytest.fixture(scope="module")
def bob_smime() -> str:
    """An S/MIME certificate for Bob."""
    return smime_certificate(BOB)


class TestKeys:
    """Storing and reading keys."""

    async def test_round_trip(
        self, make_client: ClientFactory, bob_pgp: str, bob_smime: str
    ) -> None:
        """PUT a PGP key and an S/MIME certificate, GET both, list, DELETE one type, then all."""
        client = await make_client()
        response = await client.put(f"{BASE}/{BOB}", json={"type": "pgp", "key": bob_pgp})
        assert response.status == 201
        stored = await response.json()
        assert stored["type"] == "pgp"
        assert len(stored["fingerprint"]) in (40, 64)
        assert (
            await client.put(f"{BASE}/Bob@EXAMPLE.org", json={"type": "smime", "key": bob_smime})
        ).status == 201
        got = await (await client.get(f"{BASE}/{BOB}")).json()
        assert [k["type"] for k in got["keys"]] == ["pgp", "smime"]
        assert got["keys"][0]["key"] == bob_pgp
        listing = await (await client.get(BASE)).json()
        assert listing["total"] == 2
        assert "key" not in listing["keys"][0]
        assert (await client.delete(f"{BASE}/{BOB}?type=pgp")).status == 204
        assert [k["type"] for k in (await (await client.get(f"{BASE}/{BOB}")).json())["keys"]] == [
            "smime"
        ]
        assert (await client.delete(f"{BASE}/{BOB}")).status == 204
        assert (await client.get(f"{BASE}/{BOB}")).status == 404
        assert (await client.delete(f"{BASE}/{BOB}")).status == 404

    async def test_replace(self, make_client: ClientFactory, bob_pgp: str) -> None:
        """A second PGP key for the same address replaces the first."""
        client = await make_client()
        await client.put(f"{BASE}/{BOB}", json={"type": "pgp", "key": bob_pgp})
        newer = pgp_public_key(BOB)
        await client.put(f"{BASE}/{BOB}", json={"type": "pgp", "key": newer})
        got = await (await client.get(f"{BASE}/{BOB}")).json()
        assert [k["key"] for k in got["keys"]] == [newer]

    async def test_keys_belong_to_their_user(
        self, make_client: ClientFactory, bob_pgp: str
    ) -> None:
        """Another user does not see this user's keys."""
        client = await make_client()
        await client.put(f"{BASE}/{BOB}", json={"type": "pgp", "key": bob_pgp})
        assert (await client.get(f"/v1/users/other@corp.test/keys/{BOB}")).status == 404

    async def test_preview_uses_the_key(self, make_client: ClientFactory, bob_pgp: str) -> None:
        """The preview says which key it used."""
        client = await make_client()
        address = "bob@nostarttls.test"
        key = pgp_public_key(address)
        stored = await (
            await client.put(f"{BASE}/{address}", json={"type": "pgp", "key": key})
        ).json()
        body = {"recipients": [address], "user": "sender@corp.test"}
        result = (await (await client.post("/v1/preview", json=body)).json())["recipients"][0]
        assert result["method"] == "pgp"
        assert result["key"]["fingerprint"] == stored["fingerprint"]

    async def test_restart_keeps_keys(
        self, make_client: ClientFactory, bob_pgp: str, tmp_path: Path
    ) -> None:
        """A stored key is there after a restart on the same database file."""
        db = str(tmp_path / "keys.db")
        first = await make_client(db=db)
        await first.put(f"{BASE}/{BOB}", json={"type": "pgp", "key": bob_pgp})
        await first.close()
        second = await make_client(db=db)
        assert (await second.get(f"{BASE}/{BOB}")).status == 200


class TestBadKeys:
    """Keys that must never be stored."""

    @pytest.mark.parametrize(
        ("kind", "make", "status", "code"),
        [
            ("pgp", lambda: "hello", 422, "invalid_key"),
            (
                "smime",
                lambda: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
                422,
                "invalid_key",
            ),
            ("pgp", lambda: pgp_secret_key(BOB), 422, "private_key"),
            ("smime", pem_private_key, 422, "private_key"),
            ("pgp", lambda: pgp_public_key("carol@example.org"), 422, "address_mismatch"),
            ("smime", lambda: smime_certificate("carol@example.org"), 422, "address_mismatch"),
            ("smime", lambda: "A" * 70_000, 413, "key_too_large"),
        ],
    )
    async def test_refused(
        self, make_client: ClientFactory, kind: str, make: object, status: int, code: str
    ) -> None:
        """Garbage, private keys, other people's keys and oversized keys are refused."""
        client = await make_client()
        assert callable(make)
        response = await client.put(f"{BASE}/{BOB}", json={"type": kind, "key": make()})
        assert response.status == status
        body = await response.json()
        assert body["error"]["code"] == code
        assert "PRIVATE" not in body["error"]["message"]
        assert (await (await client.get(BASE)).json())["total"] == 0

    @pytest.mark.parametrize(
        ("body", "code"),
        [
            ({"type": "gpg", "key": "x"}, "invalid_key_type"),
            ({"key": "x"}, "invalid_request"),
            ({"type": "pgp"}, "invalid_request"),
            ({"type": "pgp", "key": 5}, "invalid_request"),
            ([], "invalid_request"),
        ],
    )
    async def test_bad_request(self, make_client: ClientFactory, body: object, code: str) -> None:
        """Wrong shapes are 400 with a code."""
        client = await make_client()
        response = await client.put(f"{BASE}/{BOB}", json=body)
        assert response.status == 400
        assert (await response.json())["error"]["code"] == code

    async def test_bad_addresses(self, make_client: ClientFactory, bob_pgp: str) -> None:
        """A user or recipient that is not an address is 400."""
        client = await make_client()
        body = {"type": "pgp", "key": bob_pgp}
        response = await client.put("/v1/users/nobody/keys/bob@example.org", json=body)
        assert (await response.json())["error"]["code"] == "invalid_user"
        response = await client.put(f"{BASE}/not-an-address", json=body)
        assert (await response.json())["error"]["code"] == "invalid_address"


class TestInternationalAddresses:
    """A certificate names the A-label form of an IDN address; the recipient is typed in Unicode."""

    async def test_idn_smime(self, make_client: ClientFactory) -> None:
        """bob@bücher.test matches a certificate for bob@xn--bcher-kva.test."""
        client = await make_client()
        body = {"type": "smime", "key": smime_certificate("bob@xn--bcher-kva.test")}
        response = await client.put(f"{BASE}/bob@bücher.test", json=body)
        assert response.status == 201, await response.text()
        assert (await response.json())["address"] == "bob@xn--bcher-kva.test"
