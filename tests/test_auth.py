"""Access control: every route × every credential state, the two flows, limits, and no leaks."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from checker import credentials as cred
from checker.auth import Scope
from checker.wiring import AUTH_KEY
from tests.conftest import ClientFactory

Client = TestClient[web.Request, web.Application]
ME, OTHER = "me@corp.test", "other@corp.test"


@dataclass(frozen=True)
class Call:
    """One request to one route, with the statuses that mean "allowed"."""

    method: str
    path: str
    ok: frozenset[int]
    body: Any = None
    user: str | None = None  # whose data it reaches; None: account-level or no one's
    account_only: bool = False
    extra: dict[str, str] = field(default_factory=dict)


def _calls(user: str) -> dict[tuple[str, str], Call]:
    """A call per protected route template, reaching `user`'s data where a route has a user."""
    ok, gone = frozenset({200}), frozenset({204, 404})
    entry = {"address": "x@y.org", "reason": "manual"}
    return {
        ("GET", "/v1/domains/{domain}"): Call("GET", "/v1/domains/good.test", ok),
        ("POST", "/v1/preview"): Call(
            "POST", "/v1/preview", ok, {"recipients": ["a@good.test"], "user": user}, user
        ),
        ("GET", "/v1/suppressions"): Call("GET", "/v1/suppressions", ok, account_only=True),
        ("POST", "/v1/suppressions"): Call(
            "POST", "/v1/suppressions", frozenset({201}), entry, account_only=True
        ),
        ("DELETE", "/v1/suppressions/{target}"): Call(
            "DELETE", "/v1/suppressions/x@y.org", gone, account_only=True
        ),
        ("GET", "/v1/users/{user}/suppressions"): Call(
            "GET", f"/v1/users/{user}/suppressions", ok, user=user
        ),
        ("POST", "/v1/users/{user}/suppressions"): Call(
            "POST", f"/v1/users/{user}/suppressions", frozenset({201}), entry, user
        ),
        ("DELETE", "/v1/users/{user}/suppressions/{target}"): Call(
            "DELETE", f"/v1/users/{user}/suppressions/x@y.org", gone, user=user
        ),
        ("GET", "/v1/users/{user}/keys"): Call("GET", f"/v1/users/{user}/keys", ok, user=user),
        ("PUT", "/v1/users/{user}/keys/{address}"): Call(
            "PUT",
            f"/v1/users/{user}/keys/b@y.org",
            frozenset({422}),  # reached validation: the garbage key is refused
            {"type": "pgp", "key": "garbage"},
            user,
        ),
        ("GET", "/v1/users/{user}/keys/{address}"): Call(
            "GET", f"/v1/users/{user}/keys/b@y.org", frozenset({404}), user=user
        ),
        ("DELETE", "/v1/users/{user}/keys/{address}"): Call(
            "DELETE", f"/v1/users/{user}/keys/b@y.org", frozenset({404}), user=user
        ),
        ("GET", "/metrics"): Call("GET", "/metrics", ok, account_only=True),
        ("POST", "/v1/audits"): Call(
            "POST",
            "/v1/audits",
            frozenset({202}),
            {"recipients": ["a@good.test"], "user": user},
            user,
        ),
        ("GET", "/v1/audits"): Call("GET", "/v1/audits", ok),
        ("GET", "/v1/audits/{id}"): Call("GET", "/v1/audits/aud_none", frozenset({404})),
        ("GET", "/v1/audits/{id}/results"): Call(
            "GET", "/v1/audits/aud_none/results", frozenset({404})
        ),
        ("DELETE", "/v1/audits/{id}"): Call("DELETE", "/v1/audits/aud_none", frozenset({404})),
        ("GET", "/v1/reports/summary"): Call("GET", "/v1/reports/summary", ok, account_only=True),
        ("GET", "/v1/reports/tls-failures"): Call(
            "GET", "/v1/reports/tls-failures", ok, account_only=True
        ),
        ("GET", "/v1/users/{user}/reports/summary"): Call(
            "GET", f"/v1/users/{user}/reports/summary", ok, user=user
        ),
        ("GET", "/v1/users/{user}/reports/tls-failures"): Call(
            "GET", f"/v1/users/{user}/reports/tls-failures", ok, user=user
        ),
    }


OPEN_ROUTES = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("POST", "/v1/auth"),
    ("POST", "/oauth/token"),
    ("GET", "/openapi.json"),
}
SESSION_ROUTES = {("DELETE", "/v1/auth")}  # tested by the revocation tests


async def _credential(client: Client, scope: Scope, user: str | None = None) -> tuple[str, str]:
    credential, secret = await client.app[AUTH_KEY].create_credential(scope, user, None)
    return credential.token, secret


async def _exchange(client: Client, token: str, secret: str, date: int | None = None) -> Any:
    date = int(time.time()) if date is None else date
    body = {"token": token, "date": date, "signature": cred.signature(secret, token, date)}
    return await client.post("/v1/auth", json=body)


async def _code(client: Client, scope: Scope, user: str | None = None) -> str:
    token, secret = await _credential(client, scope, user)
    response = await _exchange(client, token, secret)
    assert response.status == 201, await response.text()
    return str((await response.json())["auth"])


async def _call(client: Client, call: Call, bearer: str | None) -> int:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    response = await client.request(call.method, call.path, json=call.body, headers=headers)
    return response.status


async def _refused_codes(client: Client) -> dict[str, str | None]:
    """Try each failing exchange; each must be a 401 and yields no code to use."""
    token, secret = await _credential(client, Scope.ACCOUNT)
    now = int(time.time())
    bad = {"token": token, "date": now, "signature": "00" * 32}
    assert (await client.post("/v1/auth", json=bad)).status == 401
    first = await _exchange(client, token, secret, now - 1)
    assert first.status == 201
    replay = await _exchange(client, token, secret, now - 1)
    assert (replay.status, (await replay.json())["error"]["code"]) == (401, "replayed_signature")
    stale = await _exchange(client, token, secret, now - 3600)
    assert (stale.status, (await stale.json())["error"]["code"]) == (401, "stale_date")
    return {"no credential": None, "bad signature": "mpa_forged", "garbage": "x" * 300}


class TestRouteMatrix:
    """Every protected route × every credential state → the right status."""

    async def test_matrix_covers_every_route(self, make_client: ClientFactory) -> None:
        """The matrix names every route the app has, so a new route cannot slip past it."""
        client = await make_client(auth="on")
        routes = {
            (r.method, r.resource.canonical)
            for r in client.app.router.routes()
            if r.resource is not None and r.method != "HEAD"
        }
        assert routes == set(_calls(ME)) | OPEN_ROUTES | SESSION_ROUTES

    async def test_without_valid_credential(self, make_client: ClientFactory) -> None:
        """No credential, a forged, replayed or stale-dated exchange, garbage: 401 everywhere."""
        client = await make_client(auth="on")
        for bearer in (await _refused_codes(client)).values():
            for call in _calls(ME).values():
                assert await _call(client, call, bearer) == 401, (call, bearer)

    async def test_expired_code(self, make_client: ClientFactory) -> None:
        """A code past its lifetime is refused on every route."""
        client = await make_client(auth="on")
        code = await _code(client, Scope.ACCOUNT)
        service = client.app[AUTH_KEY]
        service.clock = lambda: time.time() + service.code_ttl + 1
        for call in _calls(ME).values():
            assert await _call(client, call, code) == 401, call

    async def test_revoked_code(self, make_client: ClientFactory) -> None:
        """DELETE /v1/auth revokes the code; it is refused on every route afterwards."""
        client = await make_client(auth="on")
        code = await _code(client, Scope.ACCOUNT)
        response = await client.delete("/v1/auth", headers={"Authorization": f"Bearer {code}"})
        assert response.status == 204
        for call in _calls(ME).values():
            assert await _call(client, call, code) == 401, call

    async def test_user_key_on_own_data(self, make_client: ClientFactory) -> None:
        """A user credential reaches its own user's data and shared reads, not account data."""
        client = await make_client(auth="on")
        code = await _code(client, Scope.USER, ME)
        for call in _calls(ME).values():
            status = await _call(client, call, code)
            if call.account_only:
                assert status == 403, call
            else:
                assert status in call.ok, (call, status)

    async def test_user_key_on_other_users_data(self, make_client: ClientFactory) -> None:
        """A user credential gets 403 on another user's data."""
        client = await make_client(auth="on")
        code = await _code(client, Scope.USER, ME)
        for call in _calls(OTHER).values():
            status = await _call(client, call, code)
            if call.user is not None or call.account_only:
                assert status == 403, call
            else:
                assert status in call.ok, (call, status)

    async def test_account_key(self, make_client: ClientFactory) -> None:
        """An account credential reaches every route, any user's data included."""
        client = await make_client(auth="on")
        code = await _code(client, Scope.ACCOUNT)
        for user in (ME, OTHER):
            for call in _calls(user).values():
                assert await _call(client, call, code) in call.ok, call


class TestAuthCodes:
    """The auth code exchange."""

    async def test_code_answer(self, make_client: ClientFactory) -> None:
        """201 with the code and its expiry; the secret never travels."""
        client = await make_client(auth="on")
        token, secret = await _credential(client, Scope.ACCOUNT)
        response = await _exchange(client, token, secret)
        body = await response.json()
        assert response.status == 201
        assert set(body) == {"auth", "expires_at"}
        assert body["auth"].startswith("mpa_")
        assert response.headers["Cache-Control"] == "no-store"

    async def test_revoke_ends_the_whole_session_only(self, make_client: ClientFactory) -> None:
        """Revoking one session leaves another session of the same credential working."""
        client = await make_client(auth="on")
        token, secret = await _credential(client, Scope.ACCOUNT)
        first = (await (await _exchange(client, token, secret)).json())["auth"]
        second = (await (await _exchange(client, token, secret, int(time.time()) - 2)).json())[
            "auth"
        ]
        await client.delete("/v1/auth", headers={"Authorization": f"Bearer {first}"})
        call = _calls(ME)[("GET", "/v1/domains/{domain}")]
        assert await _call(client, call, first) == 401
        assert await _call(client, call, second) == 200

    async def test_revoked_credential(self, make_client: ClientFactory) -> None:
        """Revoking a credential ends its codes and refuses new exchanges."""
        client = await make_client(auth="on")
        token, secret = await _credential(client, Scope.ACCOUNT)
        code = (await (await _exchange(client, token, secret)).json())["auth"]
        assert await client.app[AUTH_KEY].revoke_credential(token)
        call = _calls(ME)[("GET", "/v1/domains/{domain}")]
        assert await _call(client, call, code) == 401
        again = await _exchange(client, token, secret, int(time.time()) - 3)
        assert again.status == 401

    @pytest.mark.parametrize(
        "body",
        [
            {"token": "t", "signature": "s"},
            {"token": "t", "date": "soon", "signature": "s"},
            {"token": "t", "date": True, "signature": "s"},
            {"token": 5, "date": 1, "signature": "s"},
            {"date": 1, "signature": "s"},
            [],
        ],
    )
    async def test_malformed_exchange(self, make_client: ClientFactory, body: object) -> None:
        """A malformed exchange is a 400, not a 401 and never a 500."""
        client = await make_client(auth="on")
        response = await client.post("/v1/auth", json=body)
        assert response.status == 400


class TestOAuth:
    """RFC 6749 §4.4 client credentials."""

    async def _token(self, client: Client, **kwargs: Any) -> Any:
        return await client.post("/oauth/token", **kwargs)

    async def test_basic_and_form(self, make_client: ClientFactory) -> None:
        """Basic or form client authentication yields a Bearer token that works on /v1."""
        client = await make_client(auth="on")
        token, secret = await _credential(client, Scope.ACCOUNT)
        basic = base64.b64encode(f"{token}:{secret}".encode()).decode()
        by_basic = await self._token(
            client,
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}"},
        )
        by_form = await self._token(
            client,
            data={"grant_type": "client_credentials", "client_id": token, "client_secret": secret},
        )
        for response in (by_basic, by_form):
            body = await response.json()
            assert response.status == 200
            assert body["token_type"] == "Bearer"
            assert body["expires_in"] > 0
            assert response.headers["Cache-Control"] == "no-store"
            call = _calls(ME)[("GET", "/v1/domains/{domain}")]
            assert await _call(client, call, body["access_token"]) == 200

    @pytest.mark.parametrize(
        ("data", "basic", "status", "error"),
        [
            ({"grant_type": "client_credentials"}, "wrong", 401, "invalid_client"),
            ({"grant_type": "client_credentials", "client_id": "x"}, None, 401, "invalid_client"),
            ({"grant_type": "password"}, None, 400, "unsupported_grant_type"),
            ({}, None, 400, "invalid_request"),
            (
                {"grant_type": "client_credentials", "client_id": "x"},
                "both",
                400,
                "invalid_request",
            ),
            ({"grant_type": "client_credentials"}, "notbase64!", 401, "invalid_client"),
        ],
    )
    async def test_errors(
        self,
        make_client: ClientFactory,
        data: dict[str, str],
        basic: str | None,
        status: int,
        error: str,
    ) -> None:
        """Errors use RFC 6749 §5.2 bodies; a failed Basic login carries WWW-Authenticate."""
        client = await make_client(auth="on")
        token, secret = await _credential(client, Scope.ACCOUNT)
        headers = {}
        if basic == "wrong":
            headers["Authorization"] = (
                "Basic " + base64.b64encode(f"{token}:nope".encode()).decode()
            )
        elif basic == "both":
            headers["Authorization"] = (
                "Basic " + base64.b64encode(f"{token}:{secret}".encode()).decode()
            )
        elif basic is not None:
            headers["Authorization"] = f"Basic {basic}"
        response = await self._token(client, data=data, headers=headers)
        body = await response.json()
        assert (response.status, body["error"]) == (status, error)
        assert body["error_description"]
        if status == 401 and basic is not None:
            assert response.headers["WWW-Authenticate"].startswith("Basic")


class TestLimits:
    """Per-credential limits."""

    async def test_rate_limit(self, make_client: ClientFactory) -> None:
        """Past the burst, a credential gets 429 with Retry-After; another credential does not."""
        client = await make_client(auth="on", rate_limit="0.5", rate_burst="3")
        mine = await _code(client, Scope.ACCOUNT)
        theirs = await _code(client, Scope.ACCOUNT)
        call = _calls(ME)[("GET", "/v1/suppressions")]
        statuses = [await _call(client, call, mine) for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        headers = {"Authorization": f"Bearer {mine}"}
        response = await client.get("/v1/suppressions", headers=headers)
        assert int(response.headers["Retry-After"]) >= 1
        assert (await response.json())["error"]["code"] == "rate_limited"
        assert await _call(client, call, theirs) == 200

    async def test_concurrent_checks(self, make_client: ClientFactory) -> None:
        """Past the concurrency cap, a credential's next check is 429."""
        client = await make_client(auth="on", max_concurrent_checks="1")
        code = await _code(client, Scope.ACCOUNT)
        headers = {"Authorization": f"Bearer {code}"}
        slow = asyncio.ensure_future(
            client.get("/v1/domains/slowgreeting.test?wait=5", headers=headers)
        )
        await asyncio.sleep(0.2)
        second = await client.get("/v1/domains/good.test", headers=headers)
        assert second.status == 429
        assert (await second.json())["error"]["code"] == "too_many_concurrent_requests"
        assert (await slow).status == 200

    async def test_slow_body(self, make_client: ClientFactory) -> None:
        """A client that stops sending its body gets 408 after CHECKER_BODY_TIMEOUT."""
        client = await make_client(body_timeout="0.3")
        reader, writer = await asyncio.open_connection(client.host, client.port)
        writer.write(
            b"POST /v1/preview HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{"
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 5)
        writer.close()
        assert b" 408 " in status_line


class TestOpenEndpoints:
    """What needs no credential, and /metrics."""

    async def test_health_needs_no_credential(self, make_client: ClientFactory) -> None:
        """/healthz and /readyz answer without a credential."""
        client = await make_client(auth="on")
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/readyz")).status == 200

    async def test_metrics_public_setting(self, make_client: ClientFactory) -> None:
        """CHECKER_METRICS_PUBLIC=true opens /metrics."""
        client = await make_client(auth="on", metrics_public="true")
        assert (await client.get("/metrics")).status == 200


class TestNoLeaks:
    """No secret, code or token reaches a log line."""

    async def test_logs_carry_no_secrets(
        self, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A full exchange, OAuth login, use and failures log none of the secrets."""
        caplog.set_level(logging.DEBUG)
        client = await make_client(auth="on")
        token, secret = await _credential(client, Scope.ACCOUNT)
        code = (await (await _exchange(client, token, secret)).json())["auth"]
        form = {"grant_type": "client_credentials", "client_id": token, "client_secret": secret}
        access = (await (await client.post("/oauth/token", data=form)).json())["access_token"]
        await client.get("/v1/suppressions", headers={"Authorization": f"Bearer {code}"})
        await client.get("/v1/suppressions", headers={"Authorization": f"Bearer {access}x"})
        await client.post("/oauth/token", data={**form, "client_secret": secret + "x"})
        for value in (secret, code, access):
            assert value not in caplog.text
