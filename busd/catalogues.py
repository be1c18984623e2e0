"""Message catalogues, loaded once and checked strictly: one loader for every page.

A package keeps ``messages/{lang}.json`` per language, each mapping keys to texts. The check
wants the same keys in every language and the same ``{placeholders}`` in every translation,
so a missing translation is a startup error, not a blank on a screen. The driver's display
(busd/display/i18n.py) and the office pages (office/web/i18n.py) load theirs through it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from importlib import resources

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


class CatalogueError(ValueError):
    pass


def _load(package: str, lang: str) -> dict[str, str]:
    text = resources.files(package).joinpath("messages", f"{lang}.json").read_text("utf-8")
    data = json.loads(text)
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise CatalogueError(f"messages/{lang}.json must map keys to strings")
    return data


def load_catalogues(package: str, languages: Sequence[str]) -> dict[str, dict[str, str]]:
    """``package``'s catalogues for ``languages``, each checked against the first one."""
    loaded = {lang: _load(package, lang) for lang in languages}
    reference = loaded[languages[0]]
    for lang, messages in loaded.items():
        missing = sorted(set(reference) - set(messages))
        extra = sorted(set(messages) - set(reference))
        if missing or extra:
            raise CatalogueError(f"messages/{lang}.json: missing {missing}, unknown {extra}")
        for key, text in messages.items():
            if set(_PLACEHOLDER.findall(text)) != set(_PLACEHOLDER.findall(reference[key])):
                raise CatalogueError(f"messages/{lang}.json: {key} has other placeholders")
    return loaded
