"""The office's settings (``config/office.example.toml``): archive, web, map, municipalities.

A municipality is a group of buses with the time zone its days are split in (local midnight)
and the language its staff read. A bus belongs to the first municipality whose ``buses``
pattern (shell-style, ``lv-*``) matches its id. The day and report pages take a
:class:`Municipality` as their argument; nothing else reads the groups.

Loading fails with :class:`OfficeConfigError`, whose message names every bad key
(``web.port: Input should be less than or equal to 65535``).
"""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from busd.plan import TimeZoneName
from office.records import DEFAULT_PREFIX

Language = Literal["lv", "lt", "en"]
OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = "© OpenStreetMap contributors"


class OfficeConfigError(ValueError):
    """A config file that cannot be used; the message names the keys."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Municipality(_Strict):
    """A group of buses: its days are split at local midnight of ``timezone``."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]
    name: Annotated[str, Field(min_length=1, max_length=80)]
    timezone: TimeZoneName = "Europe/Riga"
    language: Language = "lv"
    buses: Annotated[list[Annotated[str, Field(min_length=1, max_length=40)]],
                     Field(min_length=1, description="bus ids or shell patterns: lv-*")]
    schedule: Path | None = Field(
        default=None, description="the municipality's service schedule (TOML, "
                                  "office/schedule): the dashboard's schedule page reads it; "
                                  "relative to the config file")

    plans_dir: Path | None = Field(
        default=None, description="where busd office plan generate --out writes this "
                                  "municipality's day plans: the commands page offers them "
                                  "for sending; relative to the config file")

    @field_validator("plans_dir")
    @classmethod
    def _plans_dir(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        base = (info.context or {}).get("base")
        if value is not None and not value.is_absolute() and isinstance(base, Path):
            return base / value
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        # Checked now, every problem named, rather than when a dispatcher opens the page.
        if value is None:
            return None
        base = (info.context or {}).get("base")
        if not value.is_absolute() and isinstance(base, Path):
            value = base / value
        from busd.errors import ConfigError
        from office.schedule.model import load_schedule

        try:
            load_schedule(value)
        except ConfigError as err:
            raise ValueError("; ".join(f"{key}: {reason}" for key, reason in err.problems)
                             ) from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def has(self, bus: str) -> bool:
        return any(fnmatch.fnmatchcase(bus, pattern) for pattern in self.buses)

    def members(self, buses: Sequence[str]) -> list[str]:
        """Those of ``buses`` that belong here, sorted."""
        return sorted(b for b in buses if self.has(b))


DEFAULT_MUNICIPALITIES = (
    Municipality(id="livani", name="Līvāni", timezone="Europe/Riga", language="lv",
                 buses=["lv-*"]),
    Municipality(id="mazeikiai", name="Mažeikiai", timezone="Europe/Vilnius", language="lt",
                 buses=["lt-*"]),
)


class MapConfig(_Strict):
    tile_url: str = Field(default=OSM_TILES,
                          description="an https:// or http:// URL with {z}, {x} and {y}")
    attribution: Annotated[str, Field(max_length=200)] = OSM_ATTRIBUTION

    @field_validator("tile_url")
    @classmethod
    def _template(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// or http://")
        missing = [p for p in ("{z}", "{x}", "{y}") if p not in value]
        if missing:
            raise ValueError(f"lacks {' '.join(missing)}")
        return value

    @property
    def tile_origin(self) -> str:
        """The tiles' scheme://host[:port], the one foreign source the pages' CSP allows
        (``{s}`` subdomains become a wildcard)."""
        scheme, rest = self.tile_url.split("://", 1)
        host = rest.split("/", 1)[0].replace("{s}", "*")
        return f"{scheme}://{host}"


class WebConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8480, ge=0, le=65535, description="0: any free port")
    session_minutes: float = Field(default=480, gt=0, le=7 * 24 * 60,
                                   description="a session ends this long after login")
    idle_minutes: float = Field(default=60, gt=0, le=7 * 24 * 60,
                                description="… or this long after its last request")
    secure_cookies: bool = Field(default=False,
                                 description="Secure cookie flag: set it behind HTTPS")
    login_attempts: int = Field(default=5, ge=1, le=100,
                                description="failed logins per user or address per window")
    login_window_s: float = Field(default=300, gt=0, le=86400)
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="reverse proxies (addresses or networks) whose X-Forwarded-For names the "
                    "client: the login limit per address then counts the client's, not the "
                    "proxy's; from any other peer the header is ignored")
    push_interval_s: float = Field(default=1.0, ge=0.1, le=60,
                                   description="the fleet's live updates at most this often")
    offline_after_s: float = Field(default=120, gt=0,
                                   description="a bus heard from longer ago shows offline")


class BrokerConfig(_Strict):
    """The broker the web process listens to for the live fleet (``busd office`` flags)."""

    host: str = "localhost"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password_file: Path | None = None
    prefix: str = DEFAULT_PREFIX
    enabled: bool = Field(default=True, description="false: the live fleet from the archive only")


class OfficeConfig(_Strict):
    archive: str = Field(default="sqlite:///office.db",
                         description="sqlite:///file.db or postgresql://…")
    web: WebConfig = WebConfig()
    map: MapConfig = MapConfig()
    mqtt: BrokerConfig = BrokerConfig()
    municipalities: list[Municipality] = Field(
        default_factory=lambda: list(DEFAULT_MUNICIPALITIES))

    @field_validator("archive")
    @classmethod
    def _archive_url(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise ValueError("expected sqlite:///file.db or postgresql://…")
        return value

    @model_validator(mode="after")
    def _unique_ids(self) -> OfficeConfig:
        ids = [m.id for m in self.municipalities]
        if len(set(ids)) != len(ids):
            raise ValueError(f"municipality ids must be unique: {ids}")
        if not ids:
            raise ValueError("at least one municipality")
        return self

    def municipality_of(self, bus: str) -> Municipality:
        """The bus's municipality; a bus no group names belongs to the first."""
        for m in self.municipalities:
            if m.has(bus):
                return m
        return self.municipalities[0]

    def municipality(self, id_: str) -> Municipality | None:
        return next((m for m in self.municipalities if m.id == id_), None)


def _key(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def parse_config(data: dict[str, object], *, base: Path | None = None) -> OfficeConfig:
    """``base``: the directory relative file names (a municipality's ``schedule``) are in."""
    try:
        return OfficeConfig.model_validate(data, context={"base": base or Path.cwd()})
    except ValidationError as err:
        problems = "; ".join(f"{_key(e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
                             for e in err.errors())
        raise OfficeConfigError(problems) from None


def load_config(path: Path | None) -> OfficeConfig:
    """The file's settings (the defaults when ``path`` is None)."""
    if path is None:
        return OfficeConfig()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise OfficeConfigError(f"{path}: {err.strerror or err}") from None
    except tomllib.TOMLDecodeError as err:
        raise OfficeConfigError(f"{path}: not TOML: {err}") from None
    return parse_config(data, base=path.parent)
