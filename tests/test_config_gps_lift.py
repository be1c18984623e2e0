"""The gps, lift and simulator config sections."""

from __future__ import annotations

from pathlib import Path

import pytest

from busd.config import BusdConfig, load_config
from busd.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "busd.toml"
    path.write_text('bus_id = "mm-01"\n' + text)
    return path


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, """
[gps]
source = "nmea"
device = "dev/gps0"
[lift]
port = "dev/rs485"
[lift.registers]
fault = 9
[simulators.gps]
link = "sim/gps"
route = [{lat = 56.3974, lon = 26.3952}]
outages = [{start_s = 60, end_s = 120}]
[simulators.lift]
link = "sim/lift"
"""))
    assert cfg.gps is not None and cfg.gps.device == tmp_path / "dev/gps0"
    assert cfg.lift is not None and cfg.lift.port == tmp_path / "dev/rs485"
    assert cfg.lift.registers.fault == 9 and cfg.lift.poll_interval_s == 0.25
    assert cfg.simulators.gps is not None and cfg.simulators.gps.link == tmp_path / "sim/gps"
    assert cfg.simulators.lift is not None and cfg.simulators.lift.link == tmp_path / "sim/lift"
    assert cfg.lift_alert.speed_threshold_kmh == 3.0
    assert BusdConfig(bus_id="mm-01").gps is None


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[gps]\nsource = "nmea"\n', "gps"),
        ("[gps]\nprot = 2947\n", "gps.prot"),
        ('[lift]\nport = "/dev/x"\nunit_id = 300\n', "lift.unit_id"),
        ('[lift]\nport = "/dev/x"\n[lift.registers]\nstowed = 1\n', "lift.registers"),
        ("[simulators.gps]\noutages = [{start_s = 5, end_s = 1}]\n", "simulators.gps.outages.0"),
        ("[simulators.lift]\nspeed = 3\n", "simulators.lift.speed"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    assert any(k.startswith(key) for k, _ in err.value.problems), err.value.problems
