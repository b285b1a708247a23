"""`mailpreflight audit`: a recipient list in-process (with progress), or through a server."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import aiohttp

from checker.audits import FINISHED, Audit, AuditInputError, AuditService, AuditStatus
from checker.csvio import CSV_COLUMNS, csv_batches, csv_row, csv_text
from checker.encoding import dumps
from checker.policy import Policy
from checker.preview import PreviewEngine
from checker.settings import Settings
from checker.store import Store
from checker.wiring import build_engine

POLL_SECONDS = 0.5
EXIT_OK, EXIT_NOT_DONE, EXIT_USAGE = 0, 1, 2


@dataclass(frozen=True, slots=True)
class AuditRequest:
    """What the command line asked for."""

    path: Path
    policy: Policy
    user: str | None
    out: Path | None
    server: str | None


class Progress:
    """A progress bar on a terminal; a plain line every few seconds otherwise."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._started = time.monotonic()
        self._last_line = 0.0

    def update(self, status: dict[str, Any], domains: tuple[int, int] | None) -> None:
        """Show where the audit stands."""
        done, total = int(status["done"]), max(1, int(status["total"]))
        rate = done / max(time.monotonic() - self._started, 1e-6)
        eta = status.get("eta_seconds")
        parts = [f"{done}/{status['total']} recipients", f"{rate:.0f}/s"]
        if domains is not None:
            parts.append(f"domains {domains[0]}/{domains[1]}")
        parts.append(f"ETA {eta:.0f}s" if isinstance(eta, (int, float)) else "ETA -")
        text = ", ".join(parts)
        if self._tty:
            filled = int(30 * done / total)
            bar = "#" * filled + "-" * (30 - filled)
            self._stream.write(f"\r[{bar}] {100 * done // total:3d}% {text}  ")
        elif time.monotonic() - self._last_line >= 2 or status["status"] in FINISHED:
            self._stream.write(f"audit {status['status']}: {text}\n")
            self._last_line = time.monotonic()
        self._stream.flush()

    def close(self) -> None:
        """End the bar's line."""
        if self._tty:
            self._stream.write("\n")


async def run_audit(settings: Settings, request: AuditRequest) -> int:
    """Run the audit in-process or on a server; print a summary; write --out."""
    progress = Progress(sys.stderr)
    try:
        if request.server:
            status = await _remote(settings, request, progress)
        else:
            status = await _local(settings, request, progress)
    except AuditInputError as exc:
        print(f"mailpreflight: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        progress.close()
    counts = ", ".join(f"{k} {v}" for k, v in sorted(status["counts"].items()))
    print(f"audit {status['id']} {status['status']}: {status['done']}/{status['total']}; {counts}")
    return EXIT_OK if status["status"] == AuditStatus.DONE else EXIT_NOT_DONE


async def _local(settings: Settings, request: AuditRequest, progress: Progress) -> dict[str, Any]:
    engine = build_engine(settings)
    store = Store(settings.db)
    await store.open()
    audits = AuditService(
        store,
        PreviewEngine(engine.checker, store),
        settings.audit_workers,
        settings.audit_chunk_size,
        settings.audit_concurrency,
    )
    runner = asyncio.create_task(audits.run())
    try:
        audit = await audits.create(
            request.user or "", "cli", request.policy, request.user,
            csv_batches(request.path), settings.max_audit_recipients,
        )  # fmt: skip
        audit = await _follow_local(audits, audit, progress)
        if request.out is not None:
            await _write(request.out, audit.to_json(), audits.result_batches(audit.id))
        return audit.to_json()
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await engine.checker.close()
        await engine.resolver.close()
        await store.close()


async def _follow_local(audits: AuditService, audit: Audit, progress: Progress) -> Audit:
    while True:
        current = await audits.get(audit.id)
        assert current is not None
        progress.update(current.to_json(), await audits.domain_progress(audit.id))
        if current.status in FINISHED:
            return current
        await asyncio.sleep(POLL_SECONDS)


async def _remote(settings: Settings, request: AuditRequest, progress: Progress) -> dict[str, Any]:
    base = (request.server or "").rstrip("/")
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        headers = await _bearer(http, base)
        params = {"policy": str(request.policy)} | ({"user": request.user} if request.user else {})
        with request.path.open("rb") as upload:
            async with http.post(
                f"{base}/v1/audits",
                data=upload,
                params=params,
                headers={**headers, "Content-Type": "text/csv"},
            ) as response:
                status = await _json(response, 202)
        while status["status"] not in FINISHED:
            await asyncio.sleep(POLL_SECONDS)
            async with http.get(f"{base}/v1/audits/{status['id']}", headers=headers) as response:
                status = await _json(response, 200)
            progress.update(status, None)
        if request.out is not None:
            await _download(http, base, headers, status, request.out)
        return status


async def _bearer(http: aiohttp.ClientSession, base: str) -> dict[str, str]:
    """OAuth client credentials from MAILPREFLIGHT_TOKEN / MAILPREFLIGHT_SECRET, if set."""
    token, secret = os.environ.get("MAILPREFLIGHT_TOKEN"), os.environ.get("MAILPREFLIGHT_SECRET")
    if not token or not secret:
        return {}
    form = {"grant_type": "client_credentials", "client_id": token, "client_secret": secret}
    async with http.post(f"{base}/oauth/token", data=form) as response:
        body = await _json(response, 200)
    return {"Authorization": f"Bearer {body['access_token']}"}


async def _json(response: aiohttp.ClientResponse, expected: int) -> dict[str, Any]:
    body = await response.json(content_type=None)
    if response.status != expected:
        error = body.get("error") if isinstance(body, dict) else None
        message = error.get("message") if isinstance(error, dict) else error
        raise AuditInputError(f"server answered {response.status}: {message or body}")
    return dict(body)


async def _download(
    http: aiohttp.ClientSession,
    base: str,
    headers: dict[str, str],
    status: dict[str, Any],
    out: Path,
) -> None:
    async def pages() -> AsyncIterator[list[dict[str, Any]]]:
        first = 0
        while True:
            params = {"first_row": str(first), "matches": "1000", "format": "json"}
            url = f"{base}/v1/audits/{status['id']}/results"
            async with http.get(url, params=params, headers=headers) as response:
                page = await _json(response, 200)
            if not page["results"]:
                return
            first += len(page["results"])
            yield page["results"]

    await _write(out, status, pages())


async def _write(
    out: Path, status: dict[str, Any], batches: AsyncIterator[list[dict[str, Any]]]
) -> None:
    """Write results as CSV (by default) or as JSON (a `.json` file), batch by batch."""
    as_json = out.suffix.lower() == ".json"
    with out.open("wb") as handle:
        if as_json:
            handle.write(b'{"audit": ' + dumps(status).encode() + b', "results": [')
        else:
            handle.write(csv_text([list(CSV_COLUMNS)]))
        first = True
        async for batch in batches:
            if as_json:
                for result in batch:
                    handle.write((b"" if first else b",") + json.dumps(result).encode())
                    first = False
            else:
                handle.write(csv_text(csv_row(r) for r in batch))
        if as_json:
            handle.write(b"]}\n")
