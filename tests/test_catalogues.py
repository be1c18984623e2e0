"""The one catalogue loader (busd/catalogues.py) the display and the office pages share."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from busd.catalogues import CatalogueError, load_catalogues


def _package(root: Path, name: str, catalogues: dict[str, object]) -> str:
    folder = root / name / "messages"
    folder.mkdir(parents=True)
    (root / name / "__init__.py").write_text("")
    for lang, data in catalogues.items():
        (folder / f"{lang}.json").write_text(json.dumps(data), "utf-8")
    return name


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_loads_every_language(root: Path) -> None:
    name = _package(root, "cat_ok", {"lv": {"hi": "Sveiki, {who}"}, "en": {"hi": "Hi, {who}"}})
    assert load_catalogues(name, ("lv", "en"))["en"] == {"hi": "Hi, {who}"}


@pytest.mark.parametrize(("catalogues", "message"), [
    ({"lv": {"a": "A", "b": "B"}, "en": {"a": "A", "c": "C"}}, r"missing \['b'\], unknown \['c'\]"),
    ({"lv": {"a": "{n} km"}, "en": {"a": "{m} km"}}, "a has other placeholders"),
    ({"lv": {"a": "A"}, "en": {"a": 1}}, "must map keys to strings"),
])
def test_a_bad_catalogue_is_an_error(root: Path, catalogues: dict[str, object],
                                     message: str) -> None:
    name = _package(root, f"cat_bad_{abs(hash(message))}", catalogues)
    with pytest.raises(CatalogueError, match=message):
        load_catalogues(name, ("lv", "en"))
