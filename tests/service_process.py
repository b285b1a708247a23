"""`mailpreflight serve` as a real child process on loopback, wired to the test world."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

from tests.world import World


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class Service:
    """`mailpreflight serve` as a child process on loopback."""

    def __init__(self, world: World, tmp: Path, port: int, **settings: str) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.env = {
            **world.env(),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "CHECKER_PORT": str(port),
            "CHECKER_DB": str(tmp / "restart.db"),
            "CHECKER_SECRET_KEY_FILE": str(tmp / "secret.key"),
            **{f"CHECKER_{k.upper()}": v for k, v in settings.items()},
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log = tmp / f"service-{port}.log"  # the service's stderr: its log lines

    def spawn(self) -> None:
        """Start the child process (blocking, but only a fork and exec)."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "checker.cli", "serve"],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=log,
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
