"""A real kill of the service in the middle of an audit, and a restart: nothing is lost."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from tests.service_process import Service, free_port
from tests.world import World

RECIPIENTS = [f"user{n}@k{n}.slowdns.test" for n in range(30)]  # each domain answers late


async def _get(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as response:
        assert response.status == 200, await response.text()
        return await response.json()


class TestKillAndRestart:
    """Killing the process mid-audit and starting it again loses nothing."""

    async def test_resumes_where_it_stopped(self, world: World, tmp_path: Path) -> None:
        """Rows decided before the kill keep their results; the rest are decided after."""
        service = Service(world, tmp_path, free_port(), audit_chunk_size="5", audit_concurrency="1")
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
