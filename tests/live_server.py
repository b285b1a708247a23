"""The app served over real HTTP on 127.0.0.1 from a background thread, and a plain client."""

from __future__ import annotations

import asyncio
import http.client
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

from checker.app import create_app
from checker.settings import Settings

T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    """One HTTP request: method, percent-encoded target, body and headers."""

    method: str
    target: str
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Answer:
    """What came back."""

    status: int
    content_type: str
    body: bytes
    allow: str | None


class LiveServer:
    """The app on 127.0.0.1, served from a background thread with its own loop."""

    def __init__(self, settings: Settings) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._runner = self._run(self._start(settings))
        self.port: int = self._runner.addresses[0][1]

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    async def _start(self, settings: Settings) -> web.AppRunner:
        runner = web.AppRunner(create_app(settings), handle_signals=False, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner

    def send(self, call: Call) -> Answer:
        """Send `call` on a fresh connection and read the whole answer."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(call.method, call.target, call.body, dict(call.headers))
            response = connection.getresponse()
            body = response.read()
            content_type = response.getheader("Content-Type", "")
            return Answer(response.status, content_type, body, response.getheader("Allow"))
        finally:
            connection.close()

    def close(self) -> None:
        """Clean the app up and stop the thread."""
        self._run(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
