"""The driver's display: the web page served for the kiosk screen."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, model_validator

from busd.config.base import Strict


class DisplayConfig(Strict):
    """The driver's display: a web page served by the daemon for the kiosk screen."""

    enabled: bool = Field(default=True, description="serve the driver's display")
    host: str = Field(
        default="127.0.0.1",
        description="address to listen on; anything but loopback needs allow_remote = true",
    )
    port: int = Field(default=8080, ge=0, lt=65536, description="TCP port (0 = any free port)")
    allow_remote: bool = Field(
        default=False,
        description="explicitly allow listening beyond localhost (a screen on another box)",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="extra Host header names the page may be reached by (besides localhost, "
        "127.0.0.1, ::1 and host); guards against DNS rebinding",
    )
    language: Literal["lv", "lt", "en"] = Field(
        default="lv", description="language the page starts in (the driver can switch)"
    )
    night_mode: Literal["auto", "on", "off"] = Field(
        default="auto", description="dark theme: auto = while the sun is down at the bus"
    )
    timezone: str = Field(default="Europe/Riga", description="time zone of times on the page")
    latitude: float = Field(
        default=56.3543, ge=-90, le=90, description="position for night mode without GPS"
    )
    longitude: float = Field(
        default=26.1758, ge=-180, le=180, description="position for night mode without GPS"
    )
    margin_amber_pct: float = Field(
        default=5.0, gt=0, le=50,
        description="projected depot SOC less than this many points above the reserve: amber; "
        "below the reserve: red",
    )
    charge_target_soc: float = Field(
        default=90.0, gt=0, le=100, description="SOC the time-to-charge estimate aims for, %"
    )
    battery_capacity_kwh: float = Field(
        default=110.0, gt=0, description="usable pack energy, for the time-to-charge estimate"
    )
    push_interval_s: float = Field(
        default=0.5, ge=0.1, le=10, description="fewest real seconds between two live updates"
    )
    heartbeat_s: float = Field(
        default=5.0, ge=1, le=60,
        description="a live update at least this often (real seconds), so the page can tell "
        "a quiet daemon from a lost one",
    )
    max_clients: int = Field(default=8, ge=1, le=100, description="live-update streams at once")

    @model_validator(mode="after")
    def _check_exposure(self) -> DisplayConfig:
        loopback = {"127.0.0.1", "localhost", "::1"}
        if self.host not in loopback and not self.allow_remote:
            raise ValueError(
                f"host {self.host!r} is beyond localhost: set allow_remote = true to allow it"
            )
        if self.host in ("0.0.0.0", "::", "") and not self.allowed_hosts:
            raise ValueError(
                "listening on every address needs allowed_hosts (the names the screen uses)"
            )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.timezone!r}") from None
        return self
