"""Property-based fuzzing of the HTTP API against its OpenAPI document, over real HTTP.

Hypothesis draws requests for every documented operation: bodies the document's request schemas
accept, bodies of the wrong shape, raw bytes, odd path segments, query values and credentials.
They go to the app served on 127.0.0.1 (auth off, wired to the test world). Every answer must be
below 500, match the schema the document gives for its status, and carry no traceback.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from checker.models import iso
from checker.settings import Settings
from tests.live_server import Answer, Call, LiveServer
from tests.openapi_document import Document, Operation
from tests.schema_strategies import from_schema, text
from tests.world import World

FUZZ = settings(
    max_examples=50,
    derandomize=True,  # the same requests on every run
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.differing_executors,
    ],
)
DOCUMENT = Document.load()
OPERATIONS = {(op.method, op.template): op for op in DOCUMENT.operations()}
# Realistic values first, then the awkward ones a client might send.
PATH_VALUES = {
    "domain": ["good.test", "nullmx.test", "bücher.test", "192.0.2.1", "[::1]", "a..b", "x"],
    "user": ["me@corp.test", "Me@Corp.Test", "not-an-address", "a@b", "@corp.test"],
    "target": ["ann@example.org", "example.org", "@example.org", "x@", "@", "1.2.3.4"],
    "address": ["bob@example.org", "Bob <bob@example.org>", "bob", "bob@", "b@xn--"],
}
GOOD_PATH = {"domain": "good.test", "user": "me@corp.test", "target": "ann@example.org"}
GOOD_PATH |= {"address": "bob@example.org", "id": "aud_none"}
QUERY_EDGES = ["", "-1", "0", "1.5", "nan", "inf", "1e400", "9" * 30, "9223372036854775808"]
QUERY_EDGES += [" 7 ", "٣", "²", "1_0", "pgp", "smime"]
JSON_EDGES: list[Any] = [10**400, -(2**63), 2**63, 1e308, "²", "1" * 5000, "\ud800", ""]
NESTED = b"[" * 100_000 + b"]" * 100_000
JSON = "application/json"
AUTHORIZATION = [
    None,
    "Bearer mpa_nope",
    "Basic " + base64.b64encode(b"mpk_x:mps_y").decode(),
    "Basic !!",
    "Basic " + base64.b64encode(b"\xff\xfe:\x00").decode(),
    "Negotiate x",
]
FORM_TYPES = [
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=nope",
    "multipart/form-data",
    "multipart/form-data; boundary=xx",
    "application/json",
]


@pytest.fixture(scope="module")
def live(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The app with auth off, wired to the world; checks wait at most 0.3 s for an answer."""
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    env = world.env(
        CHECKER_DB=str(tmp / "fuzz.db"),
        CHECKER_SECRET_KEY_FILE=str(tmp / "secret.key"),
        CHECKER_AUTH="off",
        CHECKER_REQUEST_WAIT="0.3",
    )
    server = LiveServer(Settings.from_env(env))
    yield server
    server.close()


def quote(value: str) -> str:
    """Percent-encode any text (lone surrogates included) for a path segment or a query."""
    return urllib.parse.quote(value, safe="@:+,;=", errors="surrogatepass")


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()  # ASCII-only: lone surrogates travel as \ud800


def _scalar(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _property_names(schema: Any) -> list[str]:
    """Every property name a (request) schema mentions, at any depth."""
    if isinstance(schema, list):
        return [name for item in schema for name in _property_names(item)]
    if not isinstance(schema, dict):
        return []
    names = list(schema.get("properties", {}))
    return names + [n for v in schema.values() for n in _property_names(v)]


def json_values() -> st.SearchStrategy[Any]:
    """Arbitrary JSON, with the values that break careless parsers."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        text(),
        st.sampled_from(JSON_EDGES),
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text(), inner, max_size=3),
        max_leaves=8,
    )


def _segment(name: str, schema: dict[str, Any]) -> st.SearchStrategy[str]:
    values = st.one_of(
        st.sampled_from(PATH_VALUES.get(name, ["x"])), from_schema(schema).map(str), text()
    )
    # Outside the documented pattern ({ or }) or a dot segment, the router answers, not the
    # operation: TestUndocumented covers those.
    routable = values.filter(lambda s: re.fullmatch(r"[^{}]+", s) is not None)
    return routable.map(quote).filter(lambda s: s not in (".", ".."))


def _pair(name: str, schema: dict[str, Any]) -> st.SearchStrategy[str]:
    """`name=value` with a documented, an edge or an arbitrary value; or nothing at all."""
    value = st.one_of(from_schema(schema).map(_scalar), st.sampled_from(QUERY_EDGES), text())
    return st.one_of(st.just(""), st.builds(lambda v: f"{name}={quote(v)}", value))


def _query(op: Operation) -> st.SearchStrategy[str]:
    pairs = [
        _pair(p["name"], DOCUMENT.inline(p["schema"])) for p in op.parameters if p["in"] == "query"
    ]
    joined = st.tuples(*pairs).map(lambda ps: "&".join(p for p in ps if p))
    return joined.map(lambda q: "?" + q if q else "")


def _body(op: Operation) -> st.SearchStrategy[tuple[bytes | None, str | None]]:
    content = op.spec.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        schema = DOCUMENT.inline(content["application/json"]["schema"])
        names = _property_names(schema)
        wrong_shape = st.dictionaries(st.sampled_from(names) | text(), json_values(), max_size=4)
        as_json = st.one_of(from_schema(schema), wrong_shape, json_values()).map(_dumps)
        raw = st.one_of(as_json, st.binary(max_size=64), st.just(NESTED))
        bodies = st.tuples(raw, st.just(JSON))
        if "text/csv" in content:
            lines = st.lists(st.sampled_from(PATH_VALUES["address"]) | text(), max_size=4)
            csv = lines.map(lambda rows: "\n".join(rows).encode("utf-8", "surrogatepass"))
            bodies |= st.tuples(csv | st.binary(max_size=64), st.just("text/csv"))
        return bodies
    if "application/x-www-form-urlencoded" in content:
        schema = DOCUMENT.inline(content["application/x-www-form-urlencoded"]["schema"])
        fields = st.sampled_from(_property_names(schema)) | text()
        values = st.sampled_from(["client_credentials", "password", ""]) | text()
        forms = st.one_of(from_schema(schema), st.dictionaries(fields, values, max_size=4))
        encoded = forms.map(
            lambda f: "&".join(f"{quote(k)}={quote(str(v))}" for k, v in f.items()).encode()
        )
        return st.tuples(encoded | st.binary(max_size=64), st.sampled_from(FORM_TYPES))
    return st.just((None, None))


def call_strategy(op: Operation) -> st.SearchStrategy[Call]:
    """Requests for `op`: documented shapes and awkward ones alike."""
    names = re.findall(r"{(\w+)}", op.template)
    schemas = {p["name"]: DOCUMENT.inline(p["schema"]) for p in op.parameters if p["in"] == "path"}
    segments = st.tuples(*(_segment(n, schemas[n]) for n in names))

    def build(
        parts: tuple[str, ...], query: str, body: tuple[bytes | None, str | None], auth: str | None
    ) -> Call:
        path = op.template
        for name, value in zip(names, parts, strict=True):
            path = path.replace("{" + name + "}", value)
        headers = [("Content-Type", body[1])] if body[1] else []
        headers += [("Authorization", auth)] if auth else []
        return Call(op.method, path + query, body[0], tuple(headers))

    return st.builds(build, segments, _query(op), _body(op), st.sampled_from(AUTHORIZATION))


CALLS = {key: call_strategy(op) for key, op in OPERATIONS.items()}
JSON_OPERATIONS = [k for k, op in OPERATIONS.items() if "requestBody" in op.spec]


def _problems(op: Operation | None, answer: Answer) -> list[str]:
    found = DOCUMENT.check_response(
        op, answer.status, answer.content_type, answer.body, explicit=True
    )
    if answer.status >= 500:
        found.append(f"server error {answer.status}: {answer.body[:300]!r}")
    return found


def _ids(key: tuple[str, str]) -> str:
    return f"{key[0]} {key[1]}"


class TestDocumentedOperations:
    """Every documented operation, fed documented and awkward input."""

    @pytest.mark.parametrize("key", sorted(CALLS), ids=_ids)
    @FUZZ
    @given(data=st.data())
    def test_answers_match_the_document(
        self, live: LiveServer, key: tuple[str, str], data: st.DataObject
    ) -> None:
        """No 5xx, no traceback, and the body matches the schema documented for the status."""
        call = data.draw(CALLS[key], label="call")
        answer = live.send(call)
        assert _problems(OPERATIONS[key], answer) == [], call

    @pytest.mark.parametrize("key", sorted(JSON_OPERATIONS), ids=_ids)
    @FUZZ
    @given(data=st.data())
    def test_documented_bodies_are_not_malformed(
        self, live: LiveServer, key: tuple[str, str], data: st.DataObject
    ) -> None:
        """A body the request schema accepts is never refused as malformed JSON or shape."""
        op = OPERATIONS[key]
        media, spec = next(iter(op.spec["requestBody"]["content"].items()))
        body = data.draw(from_schema(DOCUMENT.inline(spec["schema"])), label="body")
        path = op.template.format(**GOOD_PATH)
        if media == "application/json":
            encoded = _dumps(body)
        else:
            encoded = urllib.parse.urlencode(body).encode()
        call = Call(op.method, path + "?wait=0", encoded, (("Content-Type", media),))
        answer = live.send(call)
        assert _problems(op, answer) == [], call
        if answer.status == 400 and media == "application/json":
            code = json.loads(answer.body)["error"]["code"]
            assert code not in ("invalid_json", "invalid_request"), (call, answer.body)


def _fits(template: str, target: str) -> bool:
    """True when the (percent-encoded) target's path matches the path template."""
    pattern = re.sub(r"{\w+}", "[^/]+", template)
    return re.fullmatch(pattern, target.partition("?")[0]) is not None


class TestUndocumented:
    """What the document does not name gets the JSON error shape, never a 5xx."""

    @FUZZ
    @given(
        method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
        prefix=st.sampled_from(["", "/v1", "/v1/users/me@corp.test", "/oauth", "/v1/domains"]),
        segments=st.lists(text().map(quote), min_size=1, max_size=3),
    )
    def test_unknown_paths(
        self, live: LiveServer, method: str, prefix: str, segments: list[str]
    ) -> None:
        """An unknown path is a 404 (or 405) with the error shape."""
        target = prefix + "/" + "/".join(segments)
        assume(not any(_fits(t, target) for t in DOCUMENT.data["paths"]))
        assume("/./" not in target + "/")
        assume("/../" not in target + "/")
        answer = live.send(Call(method, target))
        assert answer.status in (404, 405), (target, answer)
        assert _problems(None, answer) == [], target

    @FUZZ
    @given(
        key=st.sampled_from(sorted(OPERATIONS)),
        method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
    )
    def test_other_methods(self, live: LiveServer, key: tuple[str, str], method: str) -> None:
        """A documented path with a method the document does not list is a 405 with Allow."""
        template = key[1]
        assume((method, template) not in OPERATIONS)
        answer = live.send(Call(method, template.format(**GOOD_PATH)))
        assert answer.status == 405, (method, template, answer)
        assert answer.allow
        assert _problems(None, answer) == []


EDGE_CASES = [  # inputs that once got a 500
    pytest.param(
        "POST",
        "/v1/preview",
        b'{"recipients": ["\\ud800@x.org"]}',
        JSON,
        400,
        id="lone-surrogate-echoed",
    ),
    pytest.param(
        "POST",
        "/v1/suppressions",
        b'{"domain": "x.org", "reason": "manual", "note": "\\udfff"}',
        JSON,
        400,
        id="lone-surrogate-stored",
    ),
    pytest.param("POST", "/v1/preview", NESTED, JSON, 400, id="nested-too-deeply"),
    pytest.param("POST", "/v1/audits", NESTED, JSON, 400, id="audit-nested-too-deeply"),
    pytest.param(
        "POST",
        "/v1/audits",
        b'{"recipients": ["\\ud800@x.org"]}',
        JSON,
        400,
        id="audit-lone-surrogate",
    ),
    pytest.param(
        "POST",
        "/v1/auth",
        '{"token": "t", "date": "²", "signature": "s"}'.encode(),
        JSON,
        400,
        id="date-superscript-digit",
    ),
    pytest.param(
        "POST",
        "/v1/auth",
        b'{"token": "t", "date": "' + b"1" * 5000 + b'", "signature": "s"}',
        JSON,
        400,
        id="date-5000-digits",
    ),
    pytest.param(
        "POST",
        "/v1/auth",
        b'{"token": "t", "date": 1' + b"0" * 400 + b', "signature": "s"}',
        JSON,
        400,
        id="date-beyond-float",
    ),
    pytest.param(
        "GET",
        "/v1/suppressions?first_row=9223372036854775808",
        None,
        None,
        400,
        id="first-row-beyond-sqlite",
    ),
    pytest.param(
        "GET",
        "/v1/users/me@corp.test/keys?first_row=" + "9" * 30,
        None,
        None,
        400,
        id="first-row-30-digits",
    ),
    pytest.param(
        "POST",
        "/oauth/token",
        b"\x80",
        "application/x-www-form-urlencoded",
        400,
        id="form-not-utf8",
    ),
    pytest.param(
        "POST",
        "/oauth/token",
        b"grant_type=x",
        "application/x-www-form-urlencoded; charset=nope",
        400,
        id="form-unknown-charset",
    ),
    pytest.param(
        "POST", "/oauth/token", b"garbage", "multipart/form-data", 400, id="multipart-no-boundary"
    ),
    pytest.param(
        "POST",
        "/oauth/token",
        b"garbage",
        "multipart/form-data; boundary=xx",
        400,
        id="multipart-broken",
    ),
    pytest.param("DELETE", "/v1/auth", None, None, 204, id="revoke-without-header-auth-off"),
]


class TestEdgeCases:
    """Inputs fuzzing turned up: each now gets a documented 4xx (or 2xx), never a 500."""

    @pytest.mark.parametrize(("method", "target", "body", "content_type", "status"), EDGE_CASES)
    def test_edge_case(
        self,
        live: LiveServer,
        method: str,
        target: str,
        body: bytes | None,
        content_type: str | None,
        status: int,
    ) -> None:
        """The documented status and body."""
        headers = (("Content-Type", content_type),) if content_type else ()
        answer = live.send(Call(method, target, body, headers))
        op = next(op for (m, t), op in OPERATIONS.items() if m == method and _fits(t, target))
        assert answer.status == status, answer
        assert _problems(op, answer) == []


class TestDocumentedFormats:
    """Formatting helpers produce what the document promises."""

    @FUZZ
    @given(st.datetimes(timezones=st.just(UTC)))
    def test_times(self, when: datetime) -> None:
        """Every time the API renders is RFC 3339 UTC with a `Z`, whatever the year."""
        assert DOCUMENT.validator("/components/schemas/DateTime").is_valid(iso(when)), iso(when)
