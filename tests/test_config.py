from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from busd.app import prepare
from busd.config import load_config
from busd.errors import ConfigError
from tests.can_helpers import OWN_DBC, TESLA_DBC, write_config
from tests.conftest import REPO
from tests.support.mosquitto import TlsFiles

MINIMAL = f"""
bus_id = "lv-01"
[can]
interface = "virtual"
channel = "cfg-test"
dbc = "{OWN_DBC}"
[[can.mapping]]
message = "BMS_Status"
signal = "StateOfCharge"
target = "battery.soc"
"""


def problems(path: Path) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        prepare(load_config(path))
    return caught.value.problems


@pytest.mark.parametrize("name", ["sim.toml", "busd.example.toml"])
def test_shipped_configs_are_valid(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   test_pki: TlsFiles) -> None:
    # The example's secrets live on the bus; stand-ins with the right permissions here.
    secret = tmp_path / "mqtt.password"
    secret.write_text("stand-in\n")
    secret.chmod(0o600)
    monkeypatch.setenv("BUSD_MQTT__PASSWORD_FILE", str(secret))
    monkeypatch.setenv("BUSD_MQTT__TLS__CA_FILE", str(test_pki.ca))
    config = load_config(REPO / "config" / name)
    prepared = prepare(config)
    assert prepared.can_decoder is not None
    assert {"battery.soc", "battery.voltage", "battery.current", "vehicle.speed",
            "vehicle.odometer", "charger.state", "vehicle.door_open",
            } <= prepared.can_decoder.targets


def test_example_and_sim_configs_map_the_same_signals() -> None:
    example = load_config(REPO / "config" / "busd.example.toml")
    sim = load_config(REPO / "config" / "sim.toml")
    assert example.can is not None and sim.can is not None
    assert example.can.mapping == sim.can.mapping


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path, MINIMAL)
    monkeypatch.setenv("BUSD_BUS_ID", "lt-02")
    monkeypatch.setenv("BUSD_CAN__BITRATE", "250000")
    config = load_config(path)
    assert config.bus_id == "lt-02"
    assert config.can is not None and config.can.bitrate == 250000
    assert config.can.channel == "cfg-test"  # the rest of the section is kept


def test_environment_overrides_nest_parse_json_and_keep_what_they_do_not_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, test_pki: Any
) -> None:
    # Our own override (pydantic-settings' rules, without its 6 MB of imports).
    path = write_config(tmp_path, MINIMAL + '[mqtt]\nhost = "file.example"\n')
    monkeypatch.setenv("BUSD_MQTT__TLS__CA_FILE", str(test_pki.ca))  # two levels down
    monkeypatch.setenv("busd_mqtt__port", "8883")  # names are not case-sensitive
    monkeypatch.setenv("BUSD_DISPLAY__ALLOWED_HOSTS", '["bus-7.local"]')  # a list is JSON
    monkeypatch.setenv("BUSD_FRESHNESS_S", '{"battery.soc": 30}')  # so is a table
    monkeypatch.setenv("BUSD_SCENARIO_SPEED", "600")  # no config key: not ours, ignored
    config = load_config(path)
    assert config.mqtt.tls.ca_file == test_pki.ca and config.mqtt.port == 8883
    assert config.mqtt.host == "file.example"  # the file's key beside the overridden ones
    assert config.display.allowed_hosts == ["bus-7.local"]
    assert config.freshness_s == {"battery.soc": 30.0}
    assert config.can is not None and config.can.channel == "cfg-test"


def test_a_bad_environment_override_names_its_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = write_config(tmp_path, MINIMAL)
    monkeypatch.setenv("BUSD_MQTT__PROT", "1884")  # a typo below the top level is an error
    monkeypatch.setenv("BUSD_CAN__BITRATE", "fast")
    assert {key for key, _ in problems(path)} == {"mqtt.prot", "can.bitrate"}
    monkeypatch.delenv("BUSD_MQTT__PROT")
    monkeypatch.delenv("BUSD_CAN__BITRATE")
    monkeypatch.setenv("BUSD_DISPLAY__ALLOWED_HOSTS", "[bus-7")
    [(_, reason)] = problems(path)
    assert "BUSD_DISPLAY__ALLOWED_HOSTS is not valid JSON" in reason


def test_config_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUSD_CONFIG", str(write_config(tmp_path, MINIMAL)))
    assert load_config().bus_id == "lv-01"


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "vehicle.dbc").write_bytes(OWN_DBC.read_bytes())
    body = MINIMAL.replace(f'dbc = "{OWN_DBC}"', 'dbc = "vehicle.dbc"')
    config = load_config(write_config(tmp_path, body))
    assert config.can is not None and config.can.dbc == tmp_path / "vehicle.dbc"


@pytest.mark.parametrize(
    ("edit", "key", "reason"),
    [
        (lambda b: b.replace('bus_id = "lv-01"', 'bus_id = "LV 01"'), "bus_id", "pattern"),
        (lambda b: b + 'colour = "red"\n', "colour", "Extra inputs are not permitted"),
        (lambda b: b.replace('channel = "cfg-test"', 'chanel = "cfg-test"'), "can.chanel",
         "Extra inputs"),
        (lambda b: b.replace('target = "battery.soc"', 'target = "battery.flux"'),
         "can.mapping.0", "unknown busd signal 'battery.flux'"),
        (lambda b: b.replace('signal = "StateOfCharge"', 'signal = "StateOfCharm"'),
         "can.mapping.0.signal", "no signal 'StateOfCharm' in message BMS_Status"),
        (lambda b: b.replace('message = "BMS_Status"', 'message = "BMS_Statu"'),
         "can.mapping.0.message", "no message 'BMS_Statu'"),
        (lambda b: b.replace(str(OWN_DBC), "/nonexistent.dbc"), "can.dbc", "file not found"),
        (lambda b: b.replace(str(OWN_DBC), str(TESLA_DBC)), "can.dbc", "does not load strictly"),
        (lambda b: b + "[can.nope\n", "busd.toml", "not valid TOML"),
        # TOML has inf and nan; a threshold that is not a finite number is refused.
        (lambda b: b + "[motion]\nstopped_kmh = inf\n", "motion.stopped_kmh",
         "finite number"),
        # Moving and stopped have one definition ([motion]); the old keys are refused.
        (lambda b: b + "[monitoring]\nstopped_kmh = 3.0\n", "monitoring.stopped_kmh",
         "Extra inputs are not permitted"),
        (lambda b: b + "[uplink]\nmoving_kmh = 2.0\n", "uplink.moving_kmh",
         "Extra inputs are not permitted"),
        (lambda b: b + "[freshness_s]\n\"battery.soc\" = nan\n", "freshness_s.battery.soc",
         "finite number"),
    ],
)
def test_each_problem_names_its_key(tmp_path: Path, edit: Callable[[str], str], key: str,
                                    reason: str) -> None:
    found = problems(write_config(tmp_path, edit(MINIMAL)))
    assert any(k.endswith(key) and reason in r for k, r in found), found


def test_dbc_that_does_not_parse(tmp_path: Path) -> None:
    bad = tmp_path / "bad.dbc"
    bad.write_text("BO_ this is not a dbc\n SG_ ???\n")
    found = problems(write_config(tmp_path, MINIMAL.replace(str(OWN_DBC), str(bad))))
    assert found[0][0] == "can.dbc"


def test_relaxed_dbc_load_is_a_config_choice(tmp_path: Path) -> None:
    body = MINIMAL.replace(str(OWN_DBC), str(TESLA_DBC)).replace(
        'dbc = ', 'dbc_strict = false\ndbc = '
    ).replace('"BMS_Status"', '"ID292BMS_SOC"').replace('"StateOfCharge"', '"SOCUI292"')
    prepared = prepare(load_config(write_config(tmp_path, body)))
    assert prepared.can_decoder is not None


def busd(*args: str, env: dict[str, str] | None = None,
         **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "busd.cli", *args], capture_output=True, text=True, timeout=60,
        env={**os.environ, **(env or {})}, cwd=REPO, **kwargs,
    )


def test_check_config_prints_ok() -> None:
    result = busd("check-config", "config/sim.toml")
    assert result.returncode == 0 and result.stdout.strip() == "config/sim.toml: OK"


def test_example_config_is_tls_and_refuses_missing_secrets() -> None:
    config = load_config(REPO / "config" / "busd.example.toml")
    assert config.mqtt.tls.enabled and config.mqtt.port == 8883
    result = busd("check-config", "config/busd.example.toml")
    assert result.returncode == 2 and "mqtt.password_file" in result.stderr


def test_check_config_lists_every_problem(tmp_path: Path) -> None:
    body = "extra = 1\n" + MINIMAL.replace('bitrate', 'x').replace(
        'target = "battery.soc"', 'target = "battery.flux"')
    body = body.replace('channel = "cfg-test"', 'channel = "cfg-test"\nbitrate = -5')
    result = busd("check-config", str(write_config(tmp_path, body)))
    assert result.returncode == 2
    assert "  extra: Extra inputs are not permitted" in result.stderr
    assert "  can.bitrate: Input should be greater than 0" in result.stderr
    assert "  can.mapping.0: unknown busd signal 'battery.flux'" in result.stderr


def test_run_refuses_an_invalid_config_with_the_same_message(tmp_path: Path) -> None:
    body = MINIMAL.replace('signal = "StateOfCharge"', 'signal = "Nope"')
    result = busd("run", "--config", str(write_config(tmp_path, body)), "--view", "off")
    assert result.returncode == 2
    assert "refusing to start" in result.stderr
    assert "can.mapping.0.signal: no signal 'Nope' in message BMS_Status" in result.stderr


def test_run_stops_cleanly_on_sigterm_within_5_s(tmp_path: Path) -> None:
    path = write_config(tmp_path, MINIMAL)
    proc = subprocess.Popen(
        [sys.executable, "-m", "busd.cli", "run", "--config", str(path), "--view", "off"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        stderr = typing.cast("typing.IO[str]", proc.stderr)  # stderr=PIPE: never None
        for line in stderr:  # wait for the daemon to say it runs, not for a time
            if "supervisor_started" in line:
                break
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    rest = stderr.read()
    assert proc.returncode == 0
    assert "busd_stopped" in rest
    assert took < 5.0


@pytest.mark.parametrize("seconds", [0, 59, 30 * 86400 + 1])
def test_the_session_expiry_is_bounded(tmp_path: Path, seconds: int) -> None:
    """The broker keeps a bus's session (and the commands sent while it is away) for a bounded
    time: never for ever, never too short to ride out a restart."""
    path = write_config(tmp_path, MINIMAL + f"[mqtt]\nsession_expiry_s = {seconds}\n")
    assert [key for key, _ in problems(path)] == ["mqtt.session_expiry_s"]


def test_the_session_expiry_defaults_to_two_days(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, MINIMAL))
    assert config.mqtt.session_expiry_s == 2 * 86400
