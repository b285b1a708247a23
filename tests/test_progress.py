"""The audit command's progress display: a bar on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io

from checker.cli_audit import Progress


class _Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def _status(done: int, state: str = "running", eta: float | None = 12.0) -> dict[str, object]:
    return {"done": done, "total": 200, "status": state, "eta_seconds": eta}


class TestProgress:
    """What `mailpreflight audit` shows while it works."""

    def test_bar_on_a_terminal(self) -> None:
        """A terminal gets one redrawn bar: percentage, recipients, rate, domains, ETA."""
        stream = _Terminal()
        progress = Progress(stream)
        progress.update(_status(50), (3, 10))
        progress.update(_status(100), (5, 10))
        progress.close()
        text = stream.getvalue()
        assert text.count("\r") == 2
        assert "[###############---------------]  50% 100/200 recipients" in text
        assert "domains 5/10" in text
        assert "ETA 12s" in text
        assert text.endswith("\n")

    def test_plain_lines_elsewhere(self) -> None:
        """Off a terminal: no carriage returns, a line at most every 2 s, and the last one."""
        stream = io.StringIO()
        progress = Progress(stream)
        progress.update(_status(50), None)
        progress.update(_status(60), None)  # within 2 s of the last line: not printed
        progress.update(_status(200, "done", None), None)
        lines = stream.getvalue().splitlines()
        assert "\r" not in stream.getvalue()
        assert lines[0].startswith("audit running: 50/200 recipients")
        assert lines[-1].startswith("audit done: 200/200 recipients")
        assert "ETA -" in lines[-1]
        assert len(lines) == 2
