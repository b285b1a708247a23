"""Routes: batch audits — submit a list (JSON or CSV), follow it, page or stream its results."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

from checker.access import acting_user, principal
from checker.api_preview import parse_policy
from checker.audits import FINISHED, Audit, AuditInputError
from checker.auth import Scope
from checker.csvio import BATCH, CSV_COLUMNS, csv_batches, csv_row, csv_text
from checker.encoding import json_response
from checker.http_errors import ApiError, bad_request
from checker.http_input import json_object, page, parse_json, string_field, user_address
from checker.wiring import AUDITS_KEY, LIMITS_KEY, SETTINGS_KEY

routes = web.RouteTableDef()
MAX_JSON_BYTES = 16 * 1024 * 1024  # a JSON list is parsed whole; larger lists come as CSV


@routes.post("/v1/audits")
async def create_audit(request: web.Request) -> web.Response:
    """Queue an audit of a JSON list or a CSV upload; 202 with the job and its Location."""
    # An upload counts against the caller's concurrent-check limit: parsing a large list is work.
    with request.app[LIMITS_KEY].concurrency.hold(principal(request).token):
        return await _create(request)


async def _create(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS_KEY]
    limit = settings.max_audit_bytes
    if request.content_type in ("text/csv", "application/csv", "text/plain"):
        policy = parse_policy(request.query.get("policy"))
        named = user_address(request.query.get("user"))
        path = await _spool(request, limit)
        batches: AsyncIterator[list[str]] = csv_batches(path)
    else:
        body = json_object(await _json_body(request, min(limit, MAX_JSON_BYTES)))
        policy = parse_policy(string_field(body, "policy", required=False))
        named = user_address(string_field(body, "user", required=False, max_length=320))
        path = None
        batches = _list_batches(body.get("recipients"))
    user = acting_user(request, named)
    try:
        audit = await request.app[AUDITS_KEY].create(
            user or "", principal(request).token, policy, user, batches,
            settings.max_audit_recipients,
        )  # fmt: skip
    except AuditInputError as exc:
        status = 413 if "at most" in str(exc) else 400
        raise ApiError(status, "invalid_audit", str(exc)) from None
    finally:
        if path is not None:
            await asyncio.to_thread(path.unlink, missing_ok=True)
    headers = {"Location": f"/v1/audits/{audit.id}"}
    return json_response(audit.to_json(), 202, headers)


@routes.get("/v1/audits")
async def list_audits(request: web.Request) -> web.Response:
    """The caller's audits (an account credential sees every audit), newest first."""
    paging = page(request)
    who = principal(request)
    owner = None if who.scope is Scope.ACCOUNT else who.user
    audits, total = await request.app[AUDITS_KEY].list_audits(
        owner, paging.first_row, paging.matches
    )
    return json_response(
        {"audits": [a.to_json() for a in audits], **paging.to_json(len(audits), total)}
    )


@routes.get("/v1/audits/{id}")
async def get_audit(request: web.Request) -> web.Response:
    """Status, progress, counts by method, timestamps and an ETA."""
    return json_response((await _visible(request)).to_json())


@routes.delete("/v1/audits/{id}")
async def cancel_audit(request: web.Request) -> web.Response:
    """Cancel a queued or running audit (results so far stay); 409 once it has finished."""
    audit = await _visible(request)
    if audit.status in FINISHED:
        raise ApiError(409, "audit_finished", f"the audit is already {audit.status}")
    cancelled = await request.app[AUDITS_KEY].cancel(audit.id)
    return json_response((cancelled or audit).to_json())


@routes.get("/v1/audits/{id}/results")
async def audit_results(request: web.Request) -> web.StreamResponse:
    """Results in input order: JSON pages, or the whole CSV streamed."""
    audit = await _visible(request)
    service = request.app[AUDITS_KEY]
    wants_csv = request.query.get("format") == "csv" or (
        "text/csv" in request.headers.get("Accept", "") and request.query.get("format") != "json"
    )
    if wants_csv:
        return await _stream_csv(request, audit)
    paging = page(request)
    results = await service.results(audit.id, paging.first_row, paging.matches)
    return json_response({"results": results, **paging.to_json(len(results), audit.done)})


async def _visible(request: web.Request) -> Audit:
    """The audit in the path, if the caller may see it (else 404, not revealing it exists)."""
    audit = await request.app[AUDITS_KEY].get(request.match_info["id"])
    if audit is None or not principal(request).may_act_as(audit.user):
        raise ApiError(404, "not_found", "no such audit")
    return audit


async def _stream_csv(request: web.Request, audit: Audit) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{audit.id}.csv"',
        }
    )
    await response.prepare(request)
    await response.write(csv_text([list(CSV_COLUMNS)]))
    async for batch in request.app[AUDITS_KEY].result_batches(audit.id):
        await response.write(csv_text(csv_row(r) for r in batch))
    await response.write_eof()
    return response


async def _json_body(request: web.Request, limit: int) -> Any:
    # parse_json also refuses lone surrogates and deep nesting (each once a 500 here); a big
    # list is parsed off the event loop.
    return await asyncio.to_thread(parse_json, await _read_capped(request, limit))


async def _read_capped(request: web.Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in _body_chunks(request, limit):
        chunks.append(chunk)
        size += len(chunk)
    if not size:
        raise bad_request("invalid_json", "the request body must be JSON")
    return b"".join(chunks)


async def _body_chunks(request: web.Request, limit: int) -> AsyncIterator[bytes]:
    """The body in chunks, each read within the body timeout, never more than `limit` bytes."""
    timeout = request.app[SETTINGS_KEY].body_timeout
    size = 0
    while True:
        try:
            async with asyncio.timeout(timeout):
                chunk = await request.content.readany()
        except TimeoutError:
            raise ApiError(408, "request_timeout", "the request body came too slowly") from None
        if not chunk:
            return
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "payload_too_large", f"an audit upload is at most {limit} bytes")
        yield chunk


async def _spool(request: web.Request, limit: int) -> Path:
    """Write a CSV upload to a private temporary file, bounded in size and time."""
    fd, name = tempfile.mkstemp(prefix="mailpreflight-audit-", suffix=".csv")
    path = Path(name)
    complete = False
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in _body_chunks(request, limit):
                out.write(chunk)
        complete = True
    finally:
        if not complete:
            await asyncio.to_thread(path.unlink, missing_ok=True)
    return path


async def _list_batches(value: Any) -> AsyncIterator[list[str]]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_request("invalid_request", "'recipients' must be a list of strings")
    if not value:
        raise bad_request("invalid_request", "'recipients' is empty")
    for start in range(0, len(value), BATCH):
        yield value[start : start + BATCH]
