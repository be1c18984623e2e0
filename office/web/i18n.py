"""The office pages' message catalogues: Latvian, Lithuanian, English.

As the display's (busd/display/i18n.py): every text a page shows comes from
``messages/{lang}.json``; templates have only keys, through ``t("key", name=value)``. The
catalogues are checked when loaded: the same keys in every language and the same
``{placeholders}`` in each translation, so a missing translation is a startup error. Pages added
by other modules (day, reports) add their keys to the same three files.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Final

from office.config import Language

LANGUAGES: Final[tuple[Language, ...]] = ("lv", "lt", "en")
DEFAULT_LANGUAGE: Final[Language] = "lv"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


class CatalogueError(ValueError):
    pass


def _load(lang: str) -> dict[str, str]:
    text = resources.files("office.web").joinpath("messages", f"{lang}.json").read_text("utf-8")
    data = json.loads(text)
    if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise CatalogueError(f"messages/{lang}.json must map keys to strings")
    return data


@cache
def catalogues() -> dict[str, dict[str, str]]:
    loaded: dict[str, dict[str, str]] = {lang: _load(lang) for lang in LANGUAGES}
    reference = loaded["en"]
    for lang, messages in loaded.items():
        missing = sorted(set(reference) - set(messages))
        extra = sorted(set(messages) - set(reference))
        if missing or extra:
            raise CatalogueError(f"messages/{lang}.json: missing {missing}, unknown {extra}")
        for key, text in messages.items():
            if set(_PLACEHOLDER.findall(text)) != set(_PLACEHOLDER.findall(reference[key])):
                raise CatalogueError(f"messages/{lang}.json: {key} has other placeholders")
    return loaded


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
