"""Suppressions over HTTP: account and user level, paging, filters, idempotence, durability."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import ClientFactory

ACCOUNT = "/v1/suppressions"
USER = "/v1/users/Sender@Corp.test/suppressions"


class TestSuppressions:
    """Adding, listing, filtering and deleting entries."""

    @pytest.mark.parametrize("base", [ACCOUNT, USER])
    async def test_round_trip(self, make_client: ClientFactory, base: str) -> None:
        """POST one and a list, GET them back with created_at, DELETE one."""
        client = await make_client()
        one = {"address": "Ann@Example.COM", "reason": "bounce", "note": "hard bounce"}
        response = await client.post(base, json=one)
        assert response.status == 201
        added = (await response.json())["suppressions"]
        assert added[0]["address"] == "ann@example.com"
        assert added[0]["created_at"].endswith("Z")
        many = [
            {"domain": "Bücher.example", "reason": "complaint"},
            {"address": "b@x.org", "reason": "unsubscribe"},
        ]
        assert (await client.post(base, json=many)).status == 201
        listing = await (await client.get(base)).json()
        assert listing["total"] == 3
        assert [s.get("address") or s.get("domain") for s in listing["suppressions"]] == [
            "ann@example.com",
            "xn--bcher-kva.example",
            "b@x.org",
        ]
        assert (await client.delete(f"{base}/b@x.org")).status == 204
        assert (await client.delete(f"{base}/b@x.org")).status == 404
        assert (await client.delete(f"{base}/bücher.example")).status == 204
        assert (await (await client.get(base)).json())["total"] == 1

    async def test_idempotent(self, make_client: ClientFactory) -> None:
        """Posting the same entry twice keeps one, with the newer reason."""
        client = await make_client()
        await client.post(ACCOUNT, json={"address": "a@x.org", "reason": "bounce"})
        await client.post(ACCOUNT, json={"address": "a@X.ORG", "reason": "manual"})
        listing = await (await client.get(ACCOUNT)).json()
        assert listing["total"] == 1
        assert listing["suppressions"][0]["reason"] == "manual"

    async def test_paging_and_filters(self, make_client: ClientFactory) -> None:
        """first_row and matches page the list; address and domain filter it."""
        client = await make_client()
        entries = [{"address": f"u{n}@x.org", "reason": "manual"} for n in range(25)]
        entries.append({"domain": "x.org", "reason": "manual"})
        await client.post(ACCOUNT, json=entries)
        page = await (await client.get(f"{ACCOUNT}?first_row=20&matches=10")).json()
        assert (page["first_row"], page["matches"], page["total"]) == (20, 6, 26)
        found = await (await client.get(f"{ACCOUNT}?address=U3@X.org")).json()
        assert [s["address"] for s in found["suppressions"]] == ["u3@x.org"]
        domain = await (await client.get(f"{ACCOUNT}?domain=X.org")).json()
        assert [s["domain"] for s in domain["suppressions"]] == ["x.org"]

    async def test_user_entries_are_separate(self, make_client: ClientFactory) -> None:
        """A user's entries are not the account's, nor another user's."""
        client = await make_client()
        await client.post(USER, json={"address": "a@x.org", "reason": "bounce"})
        assert (await (await client.get(ACCOUNT)).json())["total"] == 0
        other = "/v1/users/other@corp.test/suppressions"
        assert (await (await client.get(other)).json())["total"] == 0
        mine = await (await client.get(USER)).json()
        assert mine["suppressions"][0]["scope"] == "user"


class TestBadInput:
    """Bad suppression requests are JSON 4xx, and store nothing."""

    @pytest.mark.parametrize(
        ("body", "code"),
        [
            ({"address": "a@x.org"}, "invalid_request"),
            ({"address": "a@x.org", "reason": "because"}, "invalid_reason"),
            ({"address": "a@x.org", "domain": "x.org", "reason": "manual"}, "invalid_request"),
            ({"reason": "manual"}, "invalid_request"),
            ({"address": "not-an-address", "reason": "manual"}, "invalid_address"),
            ({"address": "a@1.2.3.4", "reason": "manual"}, "invalid_address"),
            ({"domain": "under_score.org", "reason": "manual"}, "invalid_domain"),
            ({"address": 5, "reason": "manual"}, "invalid_request"),
            ({"address": "a@x.org", "reason": "manual", "note": "n" * 5000}, "invalid_request"),
            ([], "invalid_request"),
            ([1], "invalid_request"),
            ("text", "invalid_request"),
        ],
    )
    async def test_rejected(self, make_client: ClientFactory, body: object, code: str) -> None:
        """Each malformed entry is a 400 with its code; nothing is stored."""
        client = await make_client()
        response = await client.post(ACCOUNT, json=body)
        assert response.status == 400
        assert (await response.json())["error"]["code"] == code
        assert (await (await client.get(ACCOUNT)).json())["total"] == 0

    async def test_one_bad_entry_stores_none(self, make_client: ClientFactory) -> None:
        """A list with one bad entry stores none of it."""
        client = await make_client()
        body = [{"address": "a@x.org", "reason": "manual"}, {"address": "b@x.org"}]
        assert (await client.post(ACCOUNT, json=body)).status == 400
        assert (await (await client.get(ACCOUNT)).json())["total"] == 0

    @pytest.mark.parametrize(
        "query", ["first_row=-1", "matches=0", "matches=100000", "first_row=x", "address=nope"]
    )
    async def test_bad_paging_or_filter(self, make_client: ClientFactory, query: str) -> None:
        """Bad paging or filters are 400."""
        client = await make_client()
        assert (await client.get(f"{ACCOUNT}?{query}")).status == 400

    async def test_bad_user(self, make_client: ClientFactory) -> None:
        """A user that is not an address is 400 invalid_user."""
        client = await make_client()
        response = await client.get("/v1/users/nobody/suppressions")
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "invalid_user"


class TestDurability:
    """What the API acknowledged survives a restart, and concurrent writers lose nothing."""

    async def test_restart_keeps_entries(self, make_client: ClientFactory, tmp_path: Path) -> None:
        """Entries written before a restart on the same file are there after it."""
        db = str(tmp_path / "restart.db")
        first = await make_client(db=db)
        await first.post(ACCOUNT, json={"address": "a@x.org", "reason": "bounce"})
        await first.post(USER, json={"domain": "y.org", "reason": "manual"})
        await first.close()
        second = await make_client(db=db)
        assert (await (await second.get(ACCOUNT)).json())["total"] == 1
        assert (await (await second.get(USER)).json())["suppressions"][0]["domain"] == "y.org"

    async def test_concurrent_writers(self, make_client: ClientFactory) -> None:
        """Two hundred concurrent POSTs all land."""
        client = await make_client()
        responses = await asyncio.gather(
            *(
                client.post(ACCOUNT, json={"address": f"u{n}@x.org", "reason": "manual"})
                for n in range(200)
            )
        )
        assert {r.status for r in responses} == {201}
        assert (await (await client.get(ACCOUNT)).json())["total"] == 200
