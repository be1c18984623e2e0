"""The office pages' message catalogues: Latvian, Lithuanian, English.

As the display's (one loader, busd/catalogues.py): every text a page shows comes from
``messages/{lang}.json``; templates have only keys, through ``t("key", name=value)``. The
catalogues are checked when loaded: the same keys in every language and the same
``{placeholders}`` in each translation, so a missing translation is a startup error. Pages added
by other modules (day, reports) add their keys to the same three files.
"""

from __future__ import annotations

from functools import cache
from typing import Final

from busd.catalogues import CatalogueError, load_catalogues
from office.config import Language

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "CatalogueError", "catalogues", "language",
           "translate"]

LANGUAGES: Final[tuple[Language, ...]] = ("lv", "lt", "en")
DEFAULT_LANGUAGE: Final[Language] = "lv"


@cache
def catalogues() -> dict[str, dict[str, str]]:
    """All catalogues, checked against the default one (busd/catalogues.py)."""
    return load_catalogues("office.web", LANGUAGES)


def language(value: str | None, default: Language = DEFAULT_LANGUAGE) -> Language:
    for lang in LANGUAGES:
        if value == lang:
            return lang
    return default


def translate(lang: str, key: str, **values: object) -> str:
    """The text of ``key`` in ``lang``; an unknown key is shown as itself (and caught by the
    catalogue test, which renders every page in every language)."""
    text = catalogues()[language(lang)].get(key)
    if text is None:
        return key
    return text.format(**values) if values else text
