"""The `mailpreflight` command, run as a real process against the hermetic world."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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
