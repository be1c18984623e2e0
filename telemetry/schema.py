"""Writes (or checks) docs/schema/*.json and docs/asyncapi.yaml from the payload models.

    python -m telemetry.schema          # rewrite docs/schema/ and docs/asyncapi.yaml
    python -m telemetry.schema --check  # exit 1 when a committed file is out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from telemetry.models import SCHEMA_MODELS

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "docs" / "schema"
ASYNCAPI = DEFAULT_DIR.parent / "asyncapi.yaml"


def render() -> dict[str, str]:
    """File name -> JSON text, deterministic so the committed files can be diffed."""
    return {
        f"{name}.json": json.dumps(
            model.model_json_schema(by_alias=True, mode="serialization"), indent=2, sort_keys=True
        ) + "\n"
        for name, model in SCHEMA_MODELS.items()
    }


def stale_files(folder: Path = DEFAULT_DIR) -> list[str]:
    """Files that are missing, differ from the models, or no longer have a model."""
    wanted = render()
    problems = [
        name for name, text in wanted.items()
        if not (folder / name).exists() or (folder / name).read_text(encoding="utf-8") != text
    ]
    if folder.exists():
        problems += sorted(p.name for p in folder.glob("*.json") if p.name not in wanted)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--asyncapi", type=Path, default=ASYNCAPI)
    args = parser.parse_args(argv)
    from telemetry import asyncapi

    if args.check:
        problems = [str(args.dir / name) for name in stale_files(args.dir)]
        if not args.asyncapi.exists() or \
                args.asyncapi.read_text(encoding="utf-8") != asyncapi.render():
            problems.append(str(args.asyncapi))
        for name in problems:
            print(f"out of date: {name}", file=sys.stderr)
        return 1 if problems else 0
    args.dir.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (args.dir / name).write_text(text, encoding="utf-8")
    args.asyncapi.write_text(asyncapi.render(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
