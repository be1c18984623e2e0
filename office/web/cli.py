"""``busd office web`` (serve the dashboard) and ``busd office user add|remove|passwd|list``.

A password is never an argument (it would sit in the shell's history and in ``ps``): it is
read from a prompt (twice), from a file (``--password-file``), or from standard input
(``--password-file -``).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:  # imported when a command runs: building busd's parser stays light
    from office.config import OfficeConfig

ROLES = ("viewer", "dispatcher")  # office.users.Role's values
log = structlog.get_logger("office.web.cli")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_ERROR = 2


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="the office's TOML settings (config/office.example.toml)")
    p.add_argument("--archive", metavar="URL",
                   help="sqlite:///file.db, postgresql://…, or a SQLite file's path "
                        "(overrides the config's)")


def add_web_parser(sub: Any) -> None:
    web = sub.add_parser("web", help="the office's web dashboard: fleet map and table",
                         description="Serve the office's pages over the archive, with the "
                                     "fleet live from the broker.")
    _config_args(web)
    web.add_argument("--listen", metavar="HOST", help="address to listen on (overrides)")
    web.add_argument("--port", type=int, help="port (overrides; 0: any free port)")
    web.add_argument("--broker", metavar="HOST[:PORT]", help="the broker (overrides)")
    web.add_argument("--no-broker", action="store_true",
                     help="no live fleet from the broker: the archive only")
    web.add_argument("--duration", type=float, help="stop after this many seconds")
    web.add_argument("--log-level", default="info",
                     choices=("debug", "info", "warning", "error"))
    web.set_defaults(func=web_main)


def add_user_parser(sub: Any) -> None:
    user = sub.add_parser("user", help="the office staff's web accounts",
                          description="Add, remove or list web users, or set a password.")
    actions = user.add_subparsers(dest="user_action", metavar="{add,remove,passwd,list}",
                                  required=True)
    add = actions.add_parser("add", help="a new user")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, default="viewer")
    passwd = actions.add_parser("passwd", help="set a user's password")
    passwd.add_argument("name")
    for p in (add, passwd):
        p.add_argument("--password-file", metavar="FILE",
                       help="read the password from FILE's first line ('-': standard input)"
                            "; without it, a prompt asks twice")
    remove = actions.add_parser("remove", help="delete a user")
    remove.add_argument("name")
    listing = actions.add_parser("list", help="every user and role")
    for p in (add, passwd, remove, listing):
        _config_args(p)
    user.set_defaults(func=user_main)


def _config(args: argparse.Namespace) -> OfficeConfig:
    from office.cli import archive_url
    from office.config import load_config

    config = load_config(args.config)
    changes: dict[str, Any] = {}
    if args.archive:
        changes["archive"] = archive_url(args.archive)
    web_changes: dict[str, Any] = {}
    if getattr(args, "listen", None):
        web_changes["host"] = args.listen
    if getattr(args, "port", None) is not None:
        web_changes["port"] = args.port
    mqtt_changes: dict[str, Any] = {}
    if getattr(args, "broker", None):
        host, _, port = args.broker.partition(":")
        mqtt_changes["host"] = host
        if port:
            mqtt_changes["port"] = int(port)
    if getattr(args, "no_broker", False):
        mqtt_changes["enabled"] = False
    data = config.model_dump()
    data.update(changes)
    data["web"].update(web_changes)
    data["mqtt"].update(mqtt_changes)
    from office.config import parse_config

    return parse_config(data)


def web_main(args: argparse.Namespace) -> int:
    from busd.logs import configure_logging
    from office.archive import ArchiveError
    from office.config import OfficeConfigError
    from office.web.server import run_web

    try:
        config = _config(args)
    except (OfficeConfigError, ValueError) as err:
        print(f"busd office web: {err}", file=sys.stderr, flush=True)
        return EXIT_ERROR
    configure_logging(args.log_level, "auto")
    try:
        return asyncio.run(run_web(config, duration_s=args.duration))
    except (ArchiveError, OSError) as err:
        log.error("office_web_failed", reason=str(err))
        print(f"busd office web: {err}", file=sys.stderr, flush=True)
        return EXIT_ERROR


def read_password(source: str | None) -> str:
    """From a file, standard input ('-'), or a prompt asked twice."""
    from office.users import UserError

    if source == "-":
        return sys.stdin.readline().rstrip("\r\n")
    if source is not None:
        lines = Path(source).read_text(encoding="utf-8").splitlines()
        return lines[0] if lines else ""
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise UserError("the two passwords differ")
    return first


def user_main(args: argparse.Namespace) -> int:
    from office.archive import ArchiveError
    from office.config import OfficeConfigError
    from office.users import UserError

    try:
        config = _config(args)
        password = None
        if args.user_action in ("add", "passwd"):
            password = read_password(args.password_file)
        return asyncio.run(_user(config, args, password))
    except (OfficeConfigError, UserError, OSError, ArchiveError) as err:
        print(f"busd office user: {err}", file=sys.stderr, flush=True)
        return EXIT_ERROR


async def _user(config: OfficeConfig, args: argparse.Namespace, password: str | None) -> int:
    from office.archive import open_archive
    from office.users import Role, Users

    async with open_archive(config.archive) as archive:
        users = Users(archive)
        action = args.user_action
        if action == "add":
            assert password is not None
            await users.add(args.name, password, Role(args.role))
            log.info("office_user_added", role=args.role)
            print(f"added {args.name} ({args.role})")
        elif action == "passwd":
            assert password is not None
            if not await users.set_password(args.name, password):
                print(f"busd office user: no user {args.name!r}", file=sys.stderr)
                return EXIT_FAILED
            print(f"password of {args.name} set (their open sessions end at their next "
                  "request)")
        elif action == "remove":
            if not await users.remove(args.name):
                print(f"busd office user: no user {args.name!r}", file=sys.stderr)
                return EXIT_FAILED
            print(f"removed {args.name}")
        else:
            for u in await users.all():
                print(f"{u.name}\t{u.role.value}")
    return EXIT_OK
