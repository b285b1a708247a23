"""Shared fixtures: the hermetic world (once per session) and clients of an app wired to it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from checker.app import create_app
from checker.settings import Settings
from tests.world import World, WorldServers

ClientFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture(scope="session")
def world() -> Iterator[World]:
    """DNS and SMTP test servers on loopback for the whole session."""
    servers = WorldServers()
    yield servers.world
    servers.close()


@pytest.fixture
def world_settings(world: World) -> Settings:
    """Settings that point the service at the world, read the way the CLI reads them."""
    return Settings.from_env(world.env())


@pytest.fixture
def make_client(world: World, aiohttp_client: AiohttpClient, tmp_path: Path) -> ClientFactory:
    """Build a fresh app (fresh caches, its own database) wired to the world.

    Keyword arguments override settings: `db="…"` becomes CHECKER_DB.
    """

    async def make(**overrides: str) -> TestClient[web.Request, web.Application]:
        overrides.setdefault("db", str(tmp_path / "mailpreflight.db"))
        overrides.setdefault("secret_key_file", str(tmp_path / "secret.key"))
        env = world.env(**{f"CHECKER_{k.upper()}": v for k, v in overrides.items()})
        return await aiohttp_client(create_app(Settings.from_env(env)))

    return make
