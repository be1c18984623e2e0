"""The shipped unit is a notify service with a watchdog and strict sandboxing."""

from __future__ import annotations

import re
import shutil
import subprocess

from tests.conftest import REPO
from tests.support.fleet import ingest_restart_s

UNIT = REPO / "systemd" / "busd.service"


def test_exposure_is_at_most_2() -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is needed (Debian package systemd)"
    result = subprocess.run(
        [analyze, "security", "--offline=true", "--root=/", str(UNIT)],
        capture_output=True, text=True, timeout=60,
    )
    found = re.search(r"Overall exposure level for busd.service: ([0-9.]+)", result.stdout)
    assert found, result.stdout[-2000:] + result.stderr[-2000:]
    assert float(found.group(1)) <= 2.0


def test_notify_watchdog_restart_and_directories() -> None:
    text = UNIT.read_text()
    for line in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "StartLimitBurst=",
                 "StateDirectory=busd", "LogsDirectory=busd", "ConfigurationDirectory=busd",
                 "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_CAN", "DynamicUser=yes"):
        assert line in text, line
    # The supervisor stops everything within 4.5 s; systemd waits longer than that.
    stop_sec = re.search(r"TimeoutStopSec=(\d+)", text)
    assert stop_sec is not None
    stop = int(stop_sec.group(1))
    assert stop > 5


INGEST = REPO / "systemd" / "busd-office-ingest@.service"


def test_the_ingest_worker_unit_is_sandboxed_as_tightly() -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is needed (Debian package systemd)"
    result = subprocess.run(
        [analyze, "security", "--offline=true", "--root=/", str(INGEST)],
        capture_output=True, text=True, timeout=60,
    )
    found = re.search(r"Overall exposure level for busd-office-ingest@\w*\.service: ([0-9.]+)",
                      result.stdout)
    assert found, result.stdout[-2000:] + result.stderr[-2000:]
    assert float(found.group(1)) <= 2.0


def test_the_ingest_worker_units_command_line_is_one_busd_accepts() -> None:
    from busd.cli import build_parser
    from office.cli import ingest_main

    text = INGEST.read_text()
    exec_start = re.search(r"^ExecStart=(.*?[^\\])$", text, re.M | re.S)
    assert exec_start
    line = exec_start.group(1).replace("\\\n", " ")
    for name, value in (("${BUSD_OFFICE_CA}", "/etc/busd/office-ca.crt"),
                        ("${BUSD_OFFICE_ARCHIVE}", "postgresql://ingest@db/busd"),
                        ("%d", "/run/credentials/x"), ("%i", "3")):
        line = line.replace(name, value)
    argv = line.split()[1:]
    args = build_parser().parse_args(argv)
    assert args.func is ingest_main
    assert (args.username, args.client_id, args.tls) == ("ingest-3", "ingest-3", True)
    # Restarted at once after a SIGKILL (the broker holds its share of the live records
    # until it is back), well within the broker's session expiry.
    assert "Restart=always" in text
    assert ingest_restart_s() <= 0.5 < args.session_expiry / 10
