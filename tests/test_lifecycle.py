"""The service as a process: a graceful shutdown lets the requests in flight finish."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp
import pytest

from tests.service_process import Service, free_port
from tests.world import World


class TestGracefulShutdown:
    """SIGTERM stops new work but lets in-flight requests complete."""

    async def test_in_flight_request_finishes(self, world: World, tmp_path: Path) -> None:
        """A slow check under way when SIGTERM arrives still gets its 200; the process exits 0."""
        service = Service(world, tmp_path, free_port())
        async with aiohttp.ClientSession() as http:
            await service.start(http)
            slow = asyncio.ensure_future(
                http.get(f"{service.base}/v1/domains/slowgreeting.test?wait=10")
            )
            await asyncio.sleep(0.4)  # the greeting takes 0.8 s: the check is under way
            assert service.process is not None
            service.process.send_signal(signal.SIGTERM)
            response = await slow
            report = await response.json()
            assert response.status == 200
            assert report["tls_level"] == "verified"
            code = await asyncio.to_thread(service.process.wait, 20)
        assert code == 0


class TestAccessLog:
    """CHECKER_ACCESS_LOG turns the per-request log line on and off."""

    @pytest.mark.parametrize("enabled", ["true", "false"])
    async def test_access_log(self, world: World, tmp_path: Path, enabled: str) -> None:
        """A request leaves an aiohttp.access line only when the access log is on."""
        service = Service(world, tmp_path, free_port(), access_log=enabled)
        async with aiohttp.ClientSession() as http:
            await service.start(http)
            async with http.get(f"{service.base}/healthz") as response:
                assert response.status == 200
        service.stop()
        text = service.log.read_text()
        assert ("aiohttp.access" in text) is (enabled == "true")
        assert "event loop" in text  # the log itself works either way
