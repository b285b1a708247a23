"""A real kill of the service in the middle of an audit, and a restart: nothing is lost."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

from tests.world import World

RECIPIENTS = [f"user{n}@k{n}.slowdns.test" for n in range(30)]  # each domain answers late


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class Service:
    """`mailpreflight serve` as a child process on loopback."""

    def __init__(self, world: World, tmp: Path, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.env = {
            **world.env(),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "CHECKER_PORT": str(port),
            "CHECKER_DB": str(tmp / "restart.db"),
            "CHECKER_SECRET_KEY_FILE": str(tmp / "secret.key"),
            "CHECKER_AUDIT_CHUNK_SIZE": "5",
            "CHECKER_AUDIT_CONCURRENCY": "1",
        }
        self.process: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        """Start the child process (blocking, but only a fork and exec)."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "checker.cli", "serve"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def start(self, http: aiohttp.ClientSession) -> None:
        """Spawn the service and wait until it answers /healthz."""
        self.spawn()
        for _ in range(200):
            try:
                async with http.get(f"{self.base}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
        raise AssertionError("the service did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


async def _get(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as response:
        assert response.status == 200, await response.text()
        return await response.json()


class TestKillAndRestart:
    """Killing the process mid-audit and starting it again loses nothing."""

    async def test_resumes_where_it_stopped(self, world: World, tmp_path: Path) -> None:
        """Rows decided before the kill keep their results; the rest are decided after."""
        service = Service(world, tmp_path, _free_port())
        async with aiohttp.ClientSession() as http:
            try:
                await service.start(http)
                async with http.post(
                    f"{service.base}/v1/audits", json={"recipients": RECIPIENTS}
                ) as response:
                    assert response.status == 202
                    audit = await response.json()
                url = f"{service.base}/v1/audits/{audit['id']}"
                for _ in range(400):
                    status = await _get(http, url)
                    if status["done"] >= 5:
                        break
                    await asyncio.sleep(0.05)
                before = await _get(http, f"{url}/results?matches=1000")
                service.kill()
                assert 5 <= before["total"] < 30, "the audit should be cut mid-way"
                await service.start(http)
                for _ in range(600):
                    status = await _get(http, url)
                    if status["status"] == "done":
                        break
                    await asyncio.sleep(0.05)
                after = await _get(http, f"{url}/results?matches=1000")
            finally:
                service.stop()
        assert (status["status"], status["done"], status["total"]) == ("done", 30, 30)
        assert status["counts"] == {"tls": 30}
        assert [r["input"] for r in after["results"]] == RECIPIENTS
        assert after["results"][: len(before["results"])] == before["results"]
