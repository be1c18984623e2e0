"""A pty standing in for a serial cable, for tests that feed bytes to a real reader."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from simulators.pty import PtyLink


@pytest.fixture
async def pty_link(tmp_path: Path) -> AsyncIterator[PtyLink]:
    """An open pty; the reader opens ``link.path`` (a symlink under tmp_path)."""
    link = PtyLink(link=tmp_path / "tty")
    async with link:
        yield link
