"""``busd plan show`` and ``busd plan ack``: the planner from the terminal.

For now both work through files in ``<data_dir>/planner/`` (see
busd.planner.component): ``show`` reads ``state.json``; ``ack`` drops a
request in ``ack/`` and waits (``--wait`` seconds) for the running daemon's
answer in ``ack/<id>.result``. The lead wires it in with::

    from busd.planner.cli import add_plan_parser
    add_plan_parser(sub)   # sub = parser.add_subparsers(...)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from busd.config import CONFIG_ENV, load_config
from busd.errors import ConfigError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2


def add_plan_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    plan = subparsers.add_parser("plan", help="the day's plan and pending proposals")
    plan.add_argument("--config", help=f"config file (default: ${CONFIG_ENV})")
    plan.add_argument("--data-dir", type=Path, help="instead of the config's data_dir")
    actions = plan.add_subparsers(dest="plan_command", required=True)
    show = actions.add_parser("show", help="itinerary, projection and any pending proposal")
    show.add_argument("--lang", choices=("lv", "lt", "en"), default=None)
    show.add_argument("--json", action="store_true", help="the raw retained document")
    show.set_defaults(func=cmd_plan_show)
    ack = actions.add_parser("ack", help="accept the pending proposal (as the driver)")
    ack.add_argument("proposal_id", nargs="?", help="default: the pending one")
    ack.add_argument("--wait", type=float, default=5.0, help="seconds to wait for the daemon")
    ack.set_defaults(func=cmd_plan_ack)
    return plan


def _dir(args: argparse.Namespace) -> tuple[Path, str]:
    if args.data_dir is not None:
        return args.data_dir / "planner", "lv"
    config = load_config(args.config)
    return config.data_dir / "planner", config.planner.language


def _state(folder: Path) -> dict[str, Any] | None:
    try:
        doc: dict[str, Any] = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return doc


def cmd_plan_show(args: argparse.Namespace) -> int:
    try:
        folder, lang = _dir(args)
    except ConfigError as err:
        print(err.render(), file=sys.stderr)
        return EXIT_CONFIG
    doc = _state(folder)
    if doc is None:
        print(f"no planner state in {folder} (is the daemon running with a plan?)",
              file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(doc, ensure_ascii=False, indent=2))
        return EXIT_OK
    print(render_state(doc, args.lang or lang))
    return EXIT_OK


def render_state(doc: dict[str, Any], lang: str) -> str:
    lines = []
    plan = doc.get("plan") or {}
    lines.append(f"plan {plan.get('date')} v{plan.get('version')}  bus {plan.get('bus') or '-'}")
    done = set(doc.get("done") or [])
    for item in doc.get("itinerary") or []:
        mark = "✓" if item["id"] in done else ("▶" if item["id"] == doc.get("at") else " ")
        lines.append(f" {mark} {item['kind']:6} {item['id']:16} {item['minutes']:6.0f} min")
    proj = doc.get("projection")
    if proj:
        lines.append(
            f"SOC {proj['soc']:.1f} %  depot {proj['depot_soc']:.1f} % "
            f"(need {proj['threshold_pct']:.1f} %, margin {proj['depot_margin_pct']:+.1f})  "
            f"{'safe' if proj['safe'] else 'UNSAFE'}"
        )
    pending = doc.get("pending")
    if pending:
        lines.append(f"pending proposal {pending['id']} ({pending['kind']}):")
        for reason in pending["reasons"]:
            lines.append("  - " + reason["text"].get(lang, reason["text"]["en"]))
        lines.append(f"accept with: busd plan ack {pending['id']}")
    return "\n".join(lines)


def request_ack(folder: Path, pid: str) -> Path:
    """Drop an acknowledgement request for proposal ``pid`` in ``<folder>/ack/``.

    ``folder`` is ``<data_dir>/planner``. Returns where the running daemon will
    write its answer (an :class:`~busd.planner.core.AckResult` as JSON).
    """
    if not pid.isalnum():
        raise ValueError(f"not a proposal id: {pid!r}")
    inbox = folder / "ack"
    inbox.mkdir(parents=True, exist_ok=True)
    result_path = inbox / f"{pid}.result"
    result_path.unlink(missing_ok=True)
    tmp = inbox / f"{pid}.tmp"
    tmp.write_text("", encoding="utf-8")
    tmp.replace(inbox / pid)
    return result_path


def cmd_plan_ack(args: argparse.Namespace) -> int:
    try:
        folder, _ = _dir(args)
    except ConfigError as err:
        print(err.render(), file=sys.stderr)
        return EXIT_CONFIG
    pid = args.proposal_id
    if pid is None:
        doc = _state(folder) or {}
        pending = doc.get("pending")
        if not pending:
            print("no pending proposal", file=sys.stderr)
            return EXIT_FAILED
        pid = pending["id"]
    if not pid.isalnum():
        print(f"not a proposal id: {pid!r}", file=sys.stderr)
        return EXIT_FAILED
    result_path = request_ack(folder, pid)
    inbox = result_path.parent
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        if result_path.exists():
            result = json.loads(result_path.read_text(encoding="utf-8"))
            result_path.unlink(missing_ok=True)
            print(f"{pid}: {result['status']} {result.get('detail', '')}".rstrip())
            return EXIT_OK if result["accepted"] else EXIT_FAILED
        time.sleep(0.1)
    print(f"{pid}: request left in {inbox}; the daemon did not answer within {args.wait:g} s",
          file=sys.stderr)
    return EXIT_FAILED
