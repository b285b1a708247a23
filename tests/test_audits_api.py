"""Batch audits over the hermetic world: counts, CSV round trips, cancelling, access, bad input."""

from __future__ import annotations

import asyncio
import csv
import io
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from checker.audits import AuditService
from checker.auth import Scope
from checker.policy import Policy
from checker.preview import PreviewEngine
from checker.settings import Settings
from checker.store import Store
from checker.wiring import AUTH_KEY, build_engine
from tests.conftest import ClientFactory
from tests.world import World

Client = TestClient[web.Request, web.Application]
DOMAINS = [
    "good.test",
    "nostarttls.test",
    "selfsigned.test",
    "refused.test",
    "nullmx.test",
    "nxdomain.test",
    "xn--bcher-kva.test",
]


async def wait_done(client: Client, audit_id: str, headers: dict[str, str] | None = None) -> Any:
    """Poll the audit until it has finished; return its status document."""
    for _ in range(600):
        status = await (await client.get(f"/v1/audits/{audit_id}", headers=headers)).json()
        if status["status"] not in ("queued", "running"):
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"audit {audit_id} did not finish: {status}")


async def _truth(client: Client, policy: str) -> dict[str, str]:
    """Per-domain truth: the method a one-recipient preview gives for each domain."""
    body = {"recipients": [f"probe@{d}" for d in DOMAINS], "policy": policy}
    preview = await (await client.post("/v1/preview", json=body)).json()
    return {d: r["method"] for d, r in zip(DOMAINS, preview["recipients"], strict=True)}


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


class TestAuditJobs:
    """Audits run to the end with the right counts and results."""

    async def test_ten_thousand_recipients(self, make_client: ClientFactory) -> None:
        """10,000 recipients finish with counts that match the per-domain truth exactly."""
        client = await make_client()
        addresses = [f"user{n}@{DOMAINS[n % len(DOMAINS)]}" for n in range(9_990)]
        addresses += [f"bad{n}@@x" for n in range(10)]
        response = await client.post(
            "/v1/audits", json={"recipients": addresses, "policy": "tls_exclusive"}
        )
        assert response.status == 202
        created = await response.json()
        assert response.headers["Location"] == f"/v1/audits/{created['id']}"
        assert (created["status"], created["total"]) == ("queued", 10_000)
        status = await wait_done(client, created["id"])
        truth = await _truth(client, "tls_exclusive")
        expected = Counter(truth[a.rpartition("@")[2]] for a in addresses[:9_990])
        expected["invalid"] += 10
        assert status["status"] == "done"
        assert (status["done"], status["total"]) == (10_000, 10_000)
        assert status["counts"] == dict(expected)
        assert status["finished_at"] >= status["started_at"]

    async def test_results_pages_and_csv(self, make_client: ClientFactory) -> None:
        """Results page in input order as JSON and stream as CSV (by Accept or ?format)."""
        client = await make_client(audit_chunk_size="7")
        addresses = [f"u{n}@{DOMAINS[n % 3]}" for n in range(30)]
        created = await (await client.post("/v1/audits", json={"recipients": addresses})).json()
        await wait_done(client, created["id"])
        base = f"/v1/audits/{created['id']}/results"
        page = await (await client.get(f"{base}?first_row=10&matches=5")).json()
        assert [r["input"] for r in page["results"]] == addresses[10:15]
        assert (page["first_row"], page["matches"], page["total"]) == (10, 5, 30)
        by_accept = await client.get(base, headers={"Accept": "text/csv"})
        assert by_accept.headers["Content-Type"].startswith("text/csv")
        rows = _csv_rows(await by_accept.text())
        assert [r["input"] for r in rows] == addresses
        assert rows[0]["method"] == "tls"
        by_query = await (await client.get(f"{base}?format=csv")).text()
        assert _csv_rows(by_query) == rows

    async def test_csv_round_trip(self, make_client: ClientFactory) -> None:
        """Awkward addresses (quotes, commas, Unicode) survive CSV in and out unchanged."""
        client = await make_client()
        awkward = [
            '"quoted, comma"@good.test',
            r'"with \"quotes\""@good.test',
            "用户@bücher.test",
            "Ünïcode.Name@Bücher.TEST",
            "plain@nostarttls.test",
        ]
        upload = io.StringIO()
        writer = csv.writer(upload)
        writer.writerow(["name", "email"])
        for n, address in enumerate(awkward):
            writer.writerow([f"Person {n}, Jr.", address])
        response = await client.post(
            "/v1/audits?policy=tls_or_fallback",
            data=upload.getvalue().encode(),
            headers={"Content-Type": "text/csv"},
        )
        assert response.status == 202, await response.text()
        created = await response.json()
        assert created["total"] == len(awkward)
        await wait_done(client, created["id"])
        text = await (await client.get(f"/v1/audits/{created['id']}/results?format=csv")).text()
        rows = _csv_rows(text)
        assert [r["input"] for r in rows] == awkward
        assert [r["method"] for r in rows] == ["tls", "tls", "tls", "tls", "escrow"]

    async def test_csv_first_column_without_header(self, make_client: ClientFactory) -> None:
        """Without an email column the first column is used, a header row or not."""
        client = await make_client()
        body = "a@good.test,x\r\nb@good.test,y\r\na@good.test,z\r\n"
        response = await client.post(
            "/v1/audits", data=body.encode(), headers={"Content-Type": "text/csv"}
        )
        created = await response.json()
        assert created["total"] == 2  # deduplicated

    async def test_cancel(self, make_client: ClientFactory) -> None:
        """Cancelling stops the job; what was done stays, nothing more is done."""
        client = await make_client(audit_chunk_size="2", audit_concurrency="1")
        addresses = [f"u@d{n}.slowdns.test" for n in range(40)]
        created = await (await client.post("/v1/audits", json={"recipients": addresses})).json()
        response = await client.delete(f"/v1/audits/{created['id']}")
        assert response.status == 200
        cancelled = await response.json()
        assert cancelled["status"] == "cancelled"
        await asyncio.sleep(1.0)
        later = await (await client.get(f"/v1/audits/{created['id']}")).json()
        assert later["status"] == "cancelled"
        assert later["done"] == cancelled["done"] < 40
        again = await client.delete(f"/v1/audits/{created['id']}")
        assert again.status == 409

    async def test_interactive_not_starved(self, make_client: ClientFactory) -> None:
        """While a slow audit runs, a domain request is answered before the audit ends."""
        client = await make_client(audit_chunk_size="20", audit_concurrency="2")
        addresses = [f"u@e{n}.slowdns.test" for n in range(60)]
        created = await (await client.post("/v1/audits", json={"recipients": addresses})).json()
        await asyncio.sleep(0.1)
        report = await (await client.get("/v1/domains/nostarttls.test")).json()
        status = await (await client.get(f"/v1/audits/{created['id']}")).json()
        assert report["tls_level"] == "none"
        assert status["status"] in ("queued", "running")
        await client.delete(f"/v1/audits/{created['id']}")

    async def test_list(self, make_client: ClientFactory) -> None:
        """GET /v1/audits lists jobs newest first, paged."""
        client = await make_client()
        ids = []
        for n in range(3):
            body = {"recipients": [f"a{n}@good.test"]}
            ids.append((await (await client.post("/v1/audits", json=body)).json())["id"])
        listing = await (await client.get("/v1/audits?matches=2")).json()
        assert listing["total"] == 3
        assert len(listing["audits"]) == 2
        assert {a["id"] for a in listing["audits"]} <= set(ids)


class TestAccess:
    """A user credential sees only its own audits."""

    async def test_user_isolation(self, make_client: ClientFactory) -> None:
        """Another user's audit is a 404; an account credential sees every audit."""
        client = await make_client(auth="on")
        service = client.app[AUTH_KEY]
        bearers = {}
        for name, scope, user in (
            ("ann", Scope.USER, "ann@corp.test"),
            ("bob", Scope.USER, "bob@corp.test"),
            ("ops", Scope.ACCOUNT, None),
        ):
            credential, secret = await service.create_credential(scope, user, None)
            token, _ = await service.issue_access_token(credential.token, secret)
            bearers[name] = {"Authorization": f"Bearer {token}"}
        body = {"recipients": ["a@good.test"]}
        created = await (await client.post("/v1/audits", json=body, headers=bearers["ann"])).json()
        assert created["user"] == "ann@corp.test"
        path = f"/v1/audits/{created['id']}"
        assert (await client.get(path, headers=bearers["bob"])).status == 404
        assert (await client.get(path, headers=bearers["ops"])).status == 200
        assert (await client.get(path, headers=bearers["ann"])).status == 200
        bob_list = await (await client.get("/v1/audits", headers=bearers["bob"])).json()
        assert bob_list["total"] == 0
        other = {"recipients": ["a@good.test"], "user": "ann@corp.test"}
        refused = await client.post("/v1/audits", json=other, headers=bearers["bob"])
        assert refused.status == 403


class TestBadInput:
    """Bad audits are JSON 4xx and leave nothing behind."""

    @pytest.mark.parametrize(
        ("body", "status", "code"),
        [
            (b'{"recipients": []}', 400, "invalid_request"),
            (b'{"recipients": "a@b.c"}', 400, "invalid_request"),
            (b'{"recipients": [1]}', 400, "invalid_request"),
            (b'{"recipients": ["a@good.test"], "policy": "x"}', 400, "invalid_policy"),
            (b"{nope", 400, "invalid_json"),
            (b"", 400, "invalid_json"),
        ],
    )
    async def test_rejected_json(
        self, make_client: ClientFactory, body: bytes, status: int, code: str
    ) -> None:
        """Malformed audits are refused with a code, and no job is created."""
        client = await make_client()
        response = await client.post(
            "/v1/audits", data=body, headers={"Content-Type": "application/json"}
        )
        assert response.status == status
        assert (await response.json())["error"]["code"] == code
        assert (await (await client.get("/v1/audits")).json())["total"] == 0

    async def test_empty_csv(self, make_client: ClientFactory) -> None:
        """A CSV with a header and no addresses is a 400."""
        client = await make_client()
        response = await client.post(
            "/v1/audits", data=b"email\r\n", headers={"Content-Type": "text/csv"}
        )
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "invalid_audit"

    async def test_too_many_recipients(self, make_client: ClientFactory) -> None:
        """Past CHECKER_MAX_AUDIT_RECIPIENTS the upload is a 413 and nothing is kept."""
        client = await make_client(max_audit_recipients="5")
        body = {"recipients": [f"u{n}@good.test" for n in range(6)]}
        response = await client.post("/v1/audits", json=body)
        assert response.status == 413
        assert (await (await client.get("/v1/audits")).json())["total"] == 0

    async def test_too_large(self, make_client: ClientFactory) -> None:
        """Past CHECKER_MAX_AUDIT_BYTES the upload is a 413."""
        client = await make_client(max_audit_bytes="1000")
        data = ("email\r\n" + "".join(f"u{n}@good.test\r\n" for n in range(200))).encode()
        response = await client.post(
            "/v1/audits", data=io.BytesIO(data), headers={"Content-Type": "text/csv"}
        )
        assert response.status == 413

    async def test_unknown_audit(self, make_client: ClientFactory) -> None:
        """An unknown id is a 404 on every audit route."""
        client = await make_client()
        for method, path in (
            ("GET", "/v1/audits/aud_nope"),
            ("GET", "/v1/audits/aud_nope/results"),
            ("DELETE", "/v1/audits/aud_nope"),
        ):
            response = await client.request(method, path)
            assert response.status == 404


class TestService:
    """The audit service on its own, without HTTP."""

    async def test_created_while_workers_start(self, world: World, tmp_path: Path) -> None:
        """An audit created as the workers start (and resume) is worked on once, not twice."""
        env = {**world.env(), "CHECKER_DB": str(tmp_path / "s.db")}
        settings = Settings.from_env(env)
        engine = build_engine(settings)
        store = Store(settings.db)
        await store.open()
        audits = AuditService(store, PreviewEngine(engine.checker, store), 4, 3, 4)
        runner = asyncio.create_task(audits.run())

        async def batches() -> AsyncIterator[list[str]]:
            yield [f"u{n}@good.test" for n in range(30)]

        try:
            audit = await audits.create("", "test", Policy.TLS_OR_FALLBACK, None, batches())
            for _ in range(200):
                current = await audits.get(audit.id)
                assert current is not None
                if current.status == "done":
                    break
                await asyncio.sleep(0.05)
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
            await engine.checker.close()
            await store.close()
        assert current is not None
        assert (current.status, current.done, current.counts) == ("done", 30, {"tls": 30})
