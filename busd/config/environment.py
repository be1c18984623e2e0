"""The environment's overrides of the config file: ``BUSD_MQTT__PORT=1884``.

This did pydantic-settings' ``BaseSettings`` job for the one thing busd used
it for, in a few dozen lines instead of 6 MB of the daemon's memory (it
imports python-dotenv, its cloud secret sources and their stdlib). The rules
are the ones it applied, so the README's examples mean what they meant:

- a variable ``BUSD_<KEY>`` sets the top-level key ``<key>`` (names are not
  case-sensitive); ``__`` goes one level down: ``BUSD_MQTT__TLS__CA_FILE``;
- a variable whose top-level key is no field of the config is not ours
  (``BUSD_CONFIG``, a test's ``BUSD_SCENARIO_SPEED``) and is ignored; below the
  top level an unknown key is kept, so the model reports it as the typo it is;
- a value for a section, a list or a table (a model, ``list``, ``dict``…) is
  JSON (``BUSD_DISPLAY__ALLOWED_HOSTS='["bus-7.local"]'``); any other value is
  the string, which the model converts as it converts the file's;
- the environment wins over the file, key by key: the rest of a section the
  file sets is kept.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

PREFIX = "BUSD_"
NESTING = "__"

# Containers whose environment value is JSON, as pydantic-settings decoded them.
_CONTAINERS: tuple[type, ...] = (dict, list, tuple, set, frozenset, Mapping)


def overrides(model: type[BaseModel], environ: Mapping[str, str],
              prefix: str = PREFIX) -> dict[str, Any]:
    """The nested keys ``environ`` sets for ``model``; ValueError for a value that is no JSON."""
    out: dict[str, Any] = {}
    head = prefix.lower()
    for name, raw in environ.items():
        lowered = name.lower()
        if not lowered.startswith(head):
            continue
        keys = lowered[len(head):].split(NESTING)
        if keys[0] not in model.model_fields or not all(keys):
            continue
        annotation: Any = model
        for key in keys:
            annotation = _child(annotation, key)
        value: Any = raw
        complex_, also_plain = _is_complex(annotation)
        if complex_ and raw:
            try:
                value = json.loads(raw)
            except ValueError:
                if not also_plain:
                    raise ValueError(f"{name} is not valid JSON: {raw[:40]!r}") from None
        node = out
        for key in keys[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child
        last = keys[-1]
        if isinstance(value, dict) and isinstance(node.get(last), dict):
            value = merge(value, node[last])  # BUSD_MQTT='{…}' and BUSD_MQTT__PORT together
        node[last] = value
    return out


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` laid on it, table by table (``over`` wins)."""
    out = dict(base)
    for key, value in over.items():
        below = out.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            out[key] = merge(below, value)
        else:
            out[key] = value
    return out


def _arms(annotation: Any) -> list[Any]:
    """The types a field admits: ``CanConfig | None`` → [CanConfig]."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return [arm for arm in typing.get_args(annotation) if arm is not type(None)]
    if origin is typing.Annotated:
        return _arms(typing.get_args(annotation)[0])
    return [annotation]


def _child(annotation: Any, key: str) -> Any:
    """The annotation one level below ``key``, or None when it is not known."""
    for arm in _arms(annotation):
        if isinstance(arm, type) and issubclass(arm, BaseModel):
            field = arm.model_fields.get(key)
            if field is not None:
                return field.annotation
        elif typing.get_origin(arm) in (dict, Mapping):
            args = typing.get_args(arm)
            return args[1] if len(args) == 2 else None
    return None


def _is_complex(annotation: Any) -> tuple[bool, bool]:
    """(its value is JSON, a plain string fits it too)."""
    complex_ = plain = False
    for arm in _arms(annotation) if annotation is not None else []:
        origin = typing.get_origin(arm) or arm
        if (isinstance(origin, type) and issubclass(origin, (BaseModel, *_CONTAINERS))
                and not issubclass(origin, str | bytes)):
            complex_ = True
        else:
            plain = True
    return complex_, plain
