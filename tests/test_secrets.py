"""Secrets: private files only, and never in a log line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from busd.app import prepare
from busd.config import load_config
from busd.errors import ConfigError
from tests.can_helpers import write_config
from tests.conftest import REPO

SECRET = "s3cr3t-Pa55word-do-not-log"


def config_with_password_file(tmp_path: Path, mode: int) -> Path:
    secret = tmp_path / "mqtt.pw"
    secret.write_text(SECRET + "\n")
    secret.chmod(mode)
    return write_config(tmp_path, f'bus_id = "lv-01"\n[mqtt]\npassword_file = "{secret}"\n'
                        'username = "lv-01"\nport = 1\n')


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o660, 0o666])
def test_a_password_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    with pytest.raises(ConfigError) as caught:
        prepare(load_config(config_with_password_file(tmp_path, mode)))
    key, reason = caught.value.problems[0]
    assert key == "mqtt.password_file" and "chmod 600" in reason


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o640])
def test_a_private_password_file_is_accepted(tmp_path: Path, mode: int) -> None:
    prepare(load_config(config_with_password_file(tmp_path, mode)))


def test_the_password_never_reaches_the_log(tmp_path: Path) -> None:
    """A daemon that fails to log in to the broker logs why, never with what."""
    path = write_config(tmp_path, 'bus_id = "lv-01"\n[log]\nlevel = "debug"\nformat = "json"\n')
    env = {**os.environ, "BUSD_MQTT__PASSWORD": SECRET, "BUSD_MQTT__USERNAME": "lv-01"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "busd.cli", "run", "--config", str(path), "--view", "off"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines = []
    try:
        stderr = typing.cast("typing.IO[str]", proc.stderr)  # stderr=PIPE: never None
        for line in stderr:  # until the uplink has tried the broker and said so
            lines.append(line)
            if '"uplink"' in line and ("degraded" in line or "connect" in line):
                break
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=15)
        lines += [rest, err]
    finally:
        proc.kill()
    text = "".join(lines)
    assert '"uplink"' in text  # the connection attempt was logged
    assert SECRET not in text
