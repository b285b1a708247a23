"""The OpenAPI document: served as shipped, valid OpenAPI 3.1, complete, and true to the app."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

from checker.auth import Scope
from checker.wiring import AUTH_KEY, REPORTS_KEY
from tests.conftest import ClientFactory
from tests.openapi_document import Document, load_bytes

Client = TestClient[web.Request, web.Application]


@pytest.fixture(scope="module")
def document() -> Document:
    """The shipped document."""
    return Document.load()


async def _conforms(
    document: Document, client: Client, method: str, path: str, template: str, **kwargs: Any
) -> tuple[int, Any]:
    """Make the request; assert the answer matches the documented response; return it."""
    response = await client.request(method, path, **kwargs)
    body = await response.read()
    op = document.operation(method, template)
    content_type = response.headers.get("Content-Type", "")
    problems = document.check_response(op, response.status, content_type, body, explicit=True)
    assert problems == [], (method, path, response.status, body[:500])
    if response.content_type != "application/json":
        return response.status, body.decode()
    return response.status, json.loads(body)


class TestDocument:
    """The document itself."""

    async def test_served_document_is_the_file(self, make_client: ClientFactory) -> None:
        """GET /openapi.json serves the file byte for byte, as JSON."""
        client = await make_client()
        response = await client.get("/openapi.json")
        assert response.status == 200
        assert response.content_type == "application/json"
        assert await response.read() == load_bytes()

    def test_valid_openapi_3_1(self, document: Document) -> None:
        """openapi-spec-validator accepts it as OpenAPI 3.1."""
        assert document.data["openapi"].startswith("3.1.")
        validate(document.data)

    async def test_every_route_documented(
        self, make_client: ClientFactory, document: Document
    ) -> None:
        """The documented operations are exactly the routes the app registers (HEAD aside)."""
        client = await make_client()
        routes = {
            (r.method, r.resource.canonical)
            for r in client.app.router.routes()
            if r.resource is not None and r.method != "HEAD"
        }
        assert document.routes() == routes

    def test_security(self, document: Document) -> None:
        """/v1 needs the bearer scheme except POST /v1/auth; health, spec and token are open."""
        assert document.data["security"] == [{"bearer": []}]
        assert document.data["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
        open_routes = set()
        for op in document.operations():
            security = op.spec.get("security", document.data["security"])
            if not security or {} in security:  # no requirement, or an empty alternative
                open_routes.add((op.method, op.template))
        assert open_routes == {
            ("GET", "/healthz"),
            ("GET", "/readyz"),
            ("GET", "/openapi.json"),
            ("POST", "/v1/auth"),
            ("POST", "/oauth/token"),
        }

    def test_every_operation_has_the_error_default(self, document: Document) -> None:
        """Every operation documents `default` as the JSON error shape."""
        for op in document.operations():
            default = op.spec["responses"]["default"]["content"]["application/json"]["schema"]
            assert default == {"$ref": "#/components/schemas/Error"}, op.template


class TestResponsesMatchDocument:
    """Real answers of an app wired to the test world validate against their documented schema."""

    async def test_domain_report(self, make_client: ClientFactory, document: Document) -> None:
        """A good domain's report, with MX, addresses and a certificate."""
        client = await make_client()
        status, body = await _conforms(
            document, client, "GET", "/v1/domains/good.test?wait=10", "/v1/domains/{domain}"
        )
        assert status == 200
        assert body["mx"][0]["addresses"][0]["certificate"] is not None

    @pytest.mark.parametrize("domain", ["nullmx.test", "selfsigned.test", "refused.test"])
    async def test_other_outcomes(
        self, make_client: ClientFactory, document: Document, domain: str
    ) -> None:
        """Reports with a null MX, an unverified certificate and a refused session."""
        client = await make_client()
        path = f"/v1/domains/{domain}?wait=10"
        status, _ = await _conforms(document, client, "GET", path, "/v1/domains/{domain}")
        assert status == 200

    async def test_pending(self, make_client: ClientFactory, document: Document) -> None:
        """202 pending for a check that outlasts `wait`."""
        client = await make_client()
        path = "/v1/domains/slowgreeting.test?wait=0"
        status, body = await _conforms(document, client, "GET", path, "/v1/domains/{domain}")
        assert (status, body["status"]) == (202, "pending")

    async def test_preview(self, make_client: ClientFactory, document: Document) -> None:
        """A preview with TLS, fallback, undeliverable, suppressed and invalid recipients."""
        client = await make_client()
        entry = {"domain": "supgood.test", "reason": "manual"}
        assert (await client.post("/v1/suppressions", json=entry)).status == 201
        recipients = [
            "Ann <ann@good.test>, bob@nostarttls.test",
            "carol@nullmx.test",
            "dave@supgood.test",
            "not an address",
        ]
        body = {"recipients": recipients, "policy": "tls_or_fallback", "user": "me@corp.test"}
        status, answer = await _conforms(
            document, client, "POST", "/v1/preview?wait=10", "/v1/preview", json=body
        )
        assert status == 200
        assert {r["method"] for r in answer["recipients"]} == {
            "tls",
            "escrow",
            "undeliverable",
            "suppressed",
            "invalid",
        }

    async def test_suppressions(self, make_client: ClientFactory, document: Document) -> None:
        """Adding entries (201) and listing them (200), account- and user-level."""
        client = await make_client()
        entries = [
            {"address": "Ann@Example.org", "reason": "bounce", "note": "hard bounce"},
            {"domain": "bücher.example", "reason": "complaint"},
        ]
        for path, template in [
            ("/v1/suppressions", "/v1/suppressions"),
            ("/v1/users/me@corp.test/suppressions", "/v1/users/{user}/suppressions"),
        ]:
            status, _ = await _conforms(document, client, "POST", path, template, json=entries)
            assert status == 201
            status, page = await _conforms(document, client, "GET", path, template)
            assert (status, page["total"]) == (200, 2)

    async def test_reports(self, make_client: ClientFactory, document: Document) -> None:
        """The summary and the TLS failures after a preview with failing domains."""
        client = await make_client()
        body = {"recipients": ["a@good.test", "b@nostarttls.test", "c@selfsigned.test"]}
        assert (await client.post("/v1/preview?wait=10", json=body)).status == 200
        await client.app[REPORTS_KEY].flush()
        for path in ("/v1/reports/summary", "/v1/reports/tls-failures"):
            status, report = await _conforms(document, client, "GET", path, path)
            assert status == 200
        assert report["total"] == 2

    @pytest.mark.parametrize(
        ("method", "path", "template", "body"),
        [
            ("GET", "/v1/domains/192.0.2.1", "/v1/domains/{domain}", None),
            ("GET", "/v1/domains/good.test?wait=soon", "/v1/domains/{domain}", None),
            ("POST", "/v1/preview", "/v1/preview", {"recipients": []}),
            ("GET", "/v1/suppressions?matches=0", "/v1/suppressions", None),
            ("POST", "/v1/suppressions", "/v1/suppressions", {"address": "a@b.org"}),
        ],
    )
    async def test_bad_request(
        self,
        make_client: ClientFactory,
        document: Document,
        method: str,
        path: str,
        template: str,
        body: object,
    ) -> None:
        """400s carry the error shape with a code the operation documents."""
        client = await make_client()
        status, answer = await _conforms(document, client, method, path, template, json=body)
        assert status == 400
        assert answer["error"]["message"]

    async def test_unauthorized(self, make_client: ClientFactory, document: Document) -> None:
        """401 without a credential when auth is on."""
        client = await make_client(auth="on")
        for method, path in [("GET", "/v1/suppressions"), ("GET", "/metrics")]:
            status, _ = await _conforms(document, client, method, path, path)
            assert status == 401

    async def test_oauth(self, make_client: ClientFactory, document: Document) -> None:
        """An OAuth access token, an RFC 6749 error, and an auth code."""
        client = await make_client(auth="on")
        credential, secret = await client.app[AUTH_KEY].create_credential(Scope.ACCOUNT, None, None)
        basic = base64.b64encode(f"{credential.token}:{secret}".encode()).decode()
        form = {"grant_type": "client_credentials"}
        headers = {"Authorization": f"Basic {basic}"}
        status, token = await _conforms(
            document, client, "POST", "/oauth/token", "/oauth/token", data=form, headers=headers
        )
        assert (status, token["token_type"]) == (200, "Bearer")
        status, _ = await _conforms(
            document, client, "POST", "/oauth/token", "/oauth/token", data={"grant_type": "x"}
        )
        assert status == 400
        bearer = {"Authorization": f"Bearer {token['access_token']}"}
        status, _ = await _conforms(document, client, "GET", "/metrics", "/metrics", headers=bearer)
        assert status == 200

    async def test_operations_endpoints(
        self, make_client: ClientFactory, document: Document
    ) -> None:
        """/healthz, /readyz and /openapi.json."""
        client = await make_client()
        for path in ("/healthz", "/readyz", "/openapi.json"):
            status, _ = await _conforms(document, client, "GET", path, path)
            assert status == 200
