"""The shipped unit is a notify service with a watchdog and strict sandboxing."""

from __future__ import annotations

import re
import shutil
import subprocess

from tests.conftest import REPO

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
    stop = int(re.search(r"TimeoutStopSec=(\d+)", text).group(1))
    assert stop > 5
