"""The page's message catalogues: Latvian (default), Lithuanian, English.

Every text the page shows comes from ``messages/{lang}.json``; the markup has
only keys. The catalogues are loaded once and checked strictly: the same keys
in every language and the same ``{placeholders}`` in every translation, so a
missing translation is a startup error, not a blank on the driver's screen.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Final

LANGUAGES: Final = ("lv", "lt", "en")
DEFAULT_LANGUAGE: Final = "lv"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


class CatalogueError(ValueError):
    pass


def _load(lang: str) -> dict[str, str]:
    folder = resources.files("busd.display").joinpath("messages")
    text = folder.joinpath(f"{lang}.json").read_text("utf-8")
    data = json.loads(text)
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise CatalogueError(f"messages/{lang}.json must map keys to strings")
    return data


@cache
def catalogues() -> dict[str, dict[str, str]]:
    """All catalogues, checked against the default one."""
    loaded = {lang: _load(lang) for lang in LANGUAGES}
    reference = loaded[DEFAULT_LANGUAGE]
    for lang, messages in loaded.items():
        missing = sorted(set(reference) - set(messages))
        extra = sorted(set(messages) - set(reference))
        if missing or extra:
            raise CatalogueError(f"messages/{lang}.json: missing {missing}, unknown {extra}")
        for key, text in messages.items():
            if set(_PLACEHOLDER.findall(text)) != set(_PLACEHOLDER.findall(reference[key])):
                raise CatalogueError(f"messages/{lang}.json: {key} has other placeholders")
    return loaded
