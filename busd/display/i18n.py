"""The page's message catalogues: Latvian (default), Lithuanian, English.

Every text the page shows comes from ``messages/{lang}.json``; the markup has
only keys. The catalogues are loaded once and checked strictly (busd/catalogues.py):
a missing translation is a startup error, not a blank on the driver's screen.
"""

from __future__ import annotations

from functools import cache
from typing import Final

from busd.catalogues import CatalogueError, load_catalogues

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "CatalogueError", "catalogues"]

LANGUAGES: Final = ("lv", "lt", "en")
DEFAULT_LANGUAGE: Final = "lv"


@cache
def catalogues() -> dict[str, dict[str, str]]:
    """All catalogues, checked against the default one."""
    return load_catalogues("busd.display", LANGUAGES)
