"""The documentation names every setting the code reads."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from checker.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = [f"CHECKER_{f.name.upper()}" for f in fields(Settings)]


class TestSettingsDocumented:
    """README.md and deploy/mailpreflight.env.example list every CHECKER_* variable."""

    @pytest.mark.parametrize("document", ["README.md", "deploy/mailpreflight.env.example"])
    def test_every_setting_named(self, document: str) -> None:
        """Each Settings field appears as its environment variable."""
        text = (ROOT / document).read_text()
        missing = [name for name in SETTINGS if name not in text]
        assert not missing, f"{document} does not mention {missing}"
