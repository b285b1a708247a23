"""The `mailpreflight` command, run as a real process against the hermetic world."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from checker.cli import event_loop_factory
from checker.settings import SettingsError
from tests.service_process import Service, free_port
from tests.world import World


def _run(world: World, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": "/usr/bin:/bin", **world.env(), **env}
    return subprocess.run(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "checker.cli", *args],
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class TestServe:
    """`mailpreflight serve` and its event loop (CHECKER_EVENT_LOOP)."""

    @pytest.mark.parametrize("choice", ["auto", "asyncio", "uvloop"])
    async def test_serves_on_each_loop(self, world: World, tmp_path: Path, choice: str) -> None:
        """The service answers /healthz on asyncio's loop, on uvloop, and on the automatic pick."""
        if choice == "uvloop":
            pytest.importorskip("uvloop")
        service = Service(world, tmp_path, free_port(), event_loop=choice)
        try:
            async with aiohttp.ClientSession() as http:
                await service.start(http)
        finally:
            service.stop()

    def test_missing_uvloop_exit_two(self, world: World) -> None:
        """CHECKER_EVENT_LOOP=uvloop without uvloop installed: exit 2 naming the variable."""
        script = (
            "import sys\n"
            "sys.modules['uvloop'] = None\n"
            "from checker.cli import main\n"
            "sys.exit(main(['serve']))\n"
        )
        result = subprocess.run(  # noqa: S603 (our own interpreter)
            [sys.executable, "-c", script],
            env={"PATH": "/usr/bin:/bin", **world.env(CHECKER_EVENT_LOOP="uvloop")},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2
        assert "CHECKER_EVENT_LOOP" in result.stderr
        assert "Traceback" not in result.stderr

    def test_loop_choice(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """asyncio is always asyncio's loop; auto falls back to it when uvloop is missing."""
        assert event_loop_factory("asyncio") is asyncio.new_event_loop
        monkeypatch.setitem(sys.modules, "uvloop", None)
        assert event_loop_factory("auto") is asyncio.new_event_loop
        with pytest.raises(SettingsError, match="CHECKER_EVENT_LOOP"):
            event_loop_factory("uvloop")

    def test_uvloop_picked_when_installed(self) -> None:
        """auto and uvloop make uvloop's loop when the `fast` extra is installed."""
        uvloop = pytest.importorskip("uvloop")
        assert event_loop_factory("auto") is uvloop.new_event_loop
        assert event_loop_factory("uvloop") is uvloop.new_event_loop


class TestCheck:
    """`mailpreflight check DOMAIN… [--json]` and its exit codes."""

    def test_json_lines_and_exit_zero(self, world: World) -> None:
        """Every domain tls_ok: exit 0, one DomainReport JSON object per line."""
        result = _run(world, "check", "good.test", "Bücher.test", "--json")
        assert result.returncode == 0, result.stderr
        reports = [json.loads(line) for line in result.stdout.splitlines()]
        assert [r["ascii_domain"] for r in reports] == ["good.test", "xn--bcher-kva.test"]
        assert all(r["tls_ok"] for r in reports)

    def test_not_ok_exit_one(self, world: World) -> None:
        """One domain not tls_ok: exit 1, and the text output says why."""
        result = _run(world, "check", "good.test", "nostarttls.test")
        assert result.returncode == 1, result.stderr
        assert "nostarttls.test: mail accepts, tls none (NOT tls_ok)" in result.stdout
        assert "no_starttls" in result.stdout

    @pytest.mark.parametrize("bad", ["1.2.3.4", "localhost", "a..b", ""])
    def test_invalid_domain_exit_two(self, world: World, bad: str) -> None:
        """Invalid input: exit 2 with a message, no traceback, nothing checked."""
        result = _run(world, "check", "good.test", bad)
        assert result.returncode == 2
        assert "mailpreflight:" in result.stderr
        assert "Traceback" not in result.stderr
        assert result.stdout == ""

    def test_bad_setting_exit_two(self, world: World) -> None:
        """A bad CHECKER_* value: exit 2 naming the variable."""
        result = _run(world, "check", "good.test", CHECKER_SMTP_PORT="seventy")
        assert result.returncode == 2
        assert "CHECKER_SMTP_PORT" in result.stderr
        assert "Traceback" not in result.stderr

    def test_usage_error_exit_two(self, world: World) -> None:
        """No subcommand: exit 2 with usage."""
        result = _run(world)
        assert result.returncode == 2
        assert "usage:" in result.stderr


class TestPreview:
    """`mailpreflight preview [--policy P] [--user U] ADDRESS…`, also from stdin."""

    def test_stdin_and_exit_codes(self, world: World, tmp_path: Path) -> None:
        """Addresses from stdin; exit 1 because one recipient is undeliverable."""
        env = {**world.env(), "PATH": "/usr/bin:/bin", "CHECKER_DB": str(tmp_path / "p.db")}
        result = subprocess.run(
            [sys.executable, "-m", "checker.cli", "preview", "--json", "--user", "me@corp.test"],
            input="a@good.test\nBob <b@nostarttls.test>, c@nullmx.test\n",
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 1, result.stderr
        preview = json.loads(result.stdout)
        methods = [r["method"] for r in preview["recipients"]]
        assert methods == ["tls", "escrow", "undeliverable"]

    def test_all_secure_exit_zero(self, world: World, tmp_path: Path) -> None:
        """Every recipient gets a secure method: exit 0, text output with a summary."""
        result = _run(
            world, "preview", "--policy", "tls_exclusive", "a@good.test", "b@good.test",
            CHECKER_DB=str(tmp_path / "p.db"),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "a@good.test: tls (tls_verified; tls verified)" in result.stdout
        assert "summary: tls 2" in result.stdout

    @pytest.mark.parametrize(
        "args",
        [["--policy", "yolo", "a@good.test"], ["--user", "nobody", "a@good.test"], []],
    )
    def test_bad_input_exit_two(self, world: World, tmp_path: Path, args: list[str]) -> None:
        """Unknown policy, a user that is no address, or no addresses at all: exit 2."""
        result = _run(world, "preview", *args, CHECKER_DB=str(tmp_path / "p.db"))
        assert result.returncode == 2
        assert "mailpreflight:" in result.stderr
        assert "Traceback" not in result.stderr


AUDIT_CSV = 'name,email\r\n"Ann, A.",a@good.test\r\nBob,b@nostarttls.test\r\nCy,c@nullmx.test\r\n'


class TestAudit:
    """`mailpreflight audit FILE.csv [--out …] [--server URL]`."""

    def test_in_process_csv_out(self, world: World, tmp_path: Path) -> None:
        """In-process: plain progress lines off a terminal, a summary, and results.csv."""
        source = tmp_path / "list.csv"
        source.write_text(AUDIT_CSV)
        out = tmp_path / "results.csv"
        result = _run(
            world, "audit", str(source), "--out", str(out), CHECKER_DB=str(tmp_path / "a.db")
        )
        assert result.returncode == 0, result.stderr
        assert "audit done: 3/3 recipients" in result.stderr
        assert "domains 3/3" in result.stderr
        assert "done: 3/3; escrow 1, tls 1, undeliverable 1" in result.stdout
        rows = list(csv.DictReader(io.StringIO(out.read_text())))
        assert [(r["input"], r["method"]) for r in rows] == [
            ("a@good.test", "tls"),
            ("b@nostarttls.test", "escrow"),
            ("c@nullmx.test", "undeliverable"),
        ]

    def test_in_process_json_out(self, world: World, tmp_path: Path) -> None:
        """--out results.json writes the audit and its results as one JSON document."""
        source = tmp_path / "list.csv"
        source.write_text(AUDIT_CSV)
        out = tmp_path / "results.json"
        result = _run(
            world, "audit", str(source), "--policy", "tls_exclusive", "--out", str(out),
            CHECKER_DB=str(tmp_path / "a.db"),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        document = json.loads(out.read_text())
        assert document["audit"]["counts"] == {"tls": 1, "blocked": 1, "undeliverable": 1}
        assert [r["method"] for r in document["results"]] == ["tls", "blocked", "undeliverable"]

    async def test_server_mode(self, world: World, tmp_path: Path) -> None:
        """--server submits to a running service, follows the job and downloads the results."""
        source = tmp_path / "list.csv"
        source.write_text(AUDIT_CSV)
        out = tmp_path / "results.csv"
        service = Service(world, tmp_path, free_port())
        async with aiohttp.ClientSession() as http:
            await service.start(http)
        try:
            result = await asyncio.to_thread(
                _run, world, "audit", str(source), "--server", service.base, "--out", str(out),
                CHECKER_DB=str(tmp_path / "other.db"),
            )  # fmt: skip
        finally:
            service.stop()
        assert result.returncode == 0, result.stderr
        assert "done: 3/3" in result.stdout
        assert [r["method"] for r in csv.DictReader(io.StringIO(out.read_text()))] == [
            "tls",
            "escrow",
            "undeliverable",
        ]

    @pytest.mark.parametrize(
        "args",
        [["missing.csv"], ["list.csv", "--policy", "nope"], ["list.csv", "--out", "x.txt"]],
    )
    def test_bad_arguments(self, world: World, tmp_path: Path, args: list[str]) -> None:
        """A missing file, an unknown policy or a bad --out: exit 2 with a message."""
        (tmp_path / "list.csv").write_text(AUDIT_CSV)
        args = [str(tmp_path / a) if a.endswith(".csv") else a for a in args]
        result = _run(world, "audit", *args, CHECKER_DB=str(tmp_path / "a.db"))
        assert result.returncode == 2
        assert "mailpreflight:" in result.stderr
        assert "Traceback" not in result.stderr

    def test_empty_list(self, world: World, tmp_path: Path) -> None:
        """A CSV without addresses: exit 2."""
        source = tmp_path / "list.csv"
        source.write_text("email\r\n")
        result = _run(world, "audit", str(source), CHECKER_DB=str(tmp_path / "a.db"))
        assert result.returncode == 2
        assert "no recipients" in result.stderr


class TestKeys:
    """`mailpreflight keys create|list|revoke` on the service's database."""

    def test_create_list_revoke(self, world: World, tmp_path: Path) -> None:
        """Create prints the secret once (JSON), list never shows it, revoke ends it."""
        env = {"CHECKER_DB": str(tmp_path / "k.db"), "CHECKER_SECRET_KEY_FILE": str(tmp_path / "s")}
        created = _run(
            world, "keys", "create", "--scope", "user", "--user", "Ann@Corp.test",
            "--name", "ann", "--json", **env,
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        credential = json.loads(created.stdout)
        assert credential["token"].startswith("mpk_")
        assert credential["secret"].startswith("mps_")
        assert (credential["scope"], credential["user"]) == ("user", "ann@corp.test")
        listed = _run(world, "keys", "list", "--json", **env)
        rows = [json.loads(line) for line in listed.stdout.splitlines()]
        assert [r["token"] for r in rows] == [credential["token"]]
        assert credential["secret"] not in listed.stdout
        revoked = _run(world, "keys", "revoke", credential["token"], **env)
        assert revoked.returncode == 0
        again = _run(world, "keys", "revoke", credential["token"], **env)
        assert again.returncode == 1
        listed = _run(world, "keys", "list", **env)
        assert "revoked" in listed.stdout

    @pytest.mark.parametrize(
        "args",
        [
            ["create", "--scope", "user"],
            ["create", "--scope", "account", "--user", "a@b.test"],
            ["create", "--scope", "user", "--user", "not-an-address"],
            ["create", "--scope", "everything"],
        ],
    )
    def test_bad_arguments(self, world: World, tmp_path: Path, args: list[str]) -> None:
        """A user scope without a user, a user on an account key, a bad scope: exit 2."""
        env = {"CHECKER_DB": str(tmp_path / "k.db"), "CHECKER_SECRET_KEY_FILE": str(tmp_path / "s")}
        result = _run(world, "keys", *args, **env)
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
