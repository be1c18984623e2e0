"""The README documents every signal and every config key a user can set."""

from __future__ import annotations

from busd.config import BusdConfig, CanConfig
from busd.signals import SIGNALS
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_every_signal_is_listed_with_its_unit_and_vss_name() -> None:
    for spec in SIGNALS.values():
        row = next((line for line in README.splitlines() if f"| `{spec.name}` |" in line), None)
        assert row is not None, f"{spec.name} missing from the README"
        assert spec.vss in row and f"{spec.freshness_s:g} s" in row


def test_every_config_key_is_documented() -> None:
    for key in BusdConfig.model_fields:
        assert f"`{key}" in README, key
    for key in CanConfig.model_fields:
        assert f"can.{key}" in README, key


def test_the_two_commands_are_there() -> None:
    assert "scripts/demo " in README and "scripts/test " in README
    assert "exec scripts/test" in (REPO / ".ci" / "run").read_text()
