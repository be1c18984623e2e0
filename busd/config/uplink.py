"""The uplink to the office: the MQTT broker (and TLS), the outbox, what is sent and how often."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from busd.config.base import Strict
from busd.errors import ConfigError
from busd.signals import SIGNALS


class TlsConfig(Strict):
    """TLS to the broker. The server is always verified against ``ca_file`` (or the system CAs)."""

    enabled: bool = False
    ca_file: Path | None = Field(default=None, description="CA bundle; system CAs when unset")
    cert_file: Path | None = Field(default=None, description="client certificate (PEM)")
    key_file: Path | None = Field(default=None, description="client private key (PEM)")
    check_hostname: bool = Field(
        default=True, description="verify the broker's name; off only for lab brokers by IP"
    )

    @model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        return self


class MqttConfig(Strict):
    host: str = Field(default="localhost", description="broker host (BUSD_MQTT__HOST)")
    port: int = Field(default=1883, ge=1, le=65535, description="broker port (BUSD_MQTT__PORT)")
    client_id: str | None = Field(default=None, description="default busd-{bus_id}")
    username: str | None = None
    password: SecretStr | None = Field(
        default=None, description="prefer BUSD_MQTT__PASSWORD or password_file; never logged"
    )
    password_file: Path | None = Field(default=None, description="file holding the password")
    protocol: Literal["auto", "5", "3.1.1"] = Field(
        default="auto", description="auto: MQTT 5, falling back to 3.1.1 if the broker refuses"
    )
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    timeout_s: float = Field(default=10.0, gt=0, description="connect/publish/ack timeout")
    # The first retry 0.25-0.5 s after a drop (jittered): a broker restarted for maintenance
    # is back in well under a second, and what the bus made meanwhile is live again soon after.
    reconnect_initial_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=60.0, gt=0)
    session_expiry_s: int = Field(
        default=2 * 86400, ge=60, le=30 * 86400,
        description="the broker keeps the bus's session (its subscriptions, and the commands "
        "sent while it is offline) this long after the bus disconnects",
    )
    topic_prefix: str = Field(
        default="multimobile/v1/{bus_id}", description="every topic starts with this"
    )
    tls: TlsConfig = TlsConfig()

    @model_validator(mode="after")
    def _check(self) -> MqttConfig:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        if self.reconnect_initial_s > self.reconnect_max_s:
            raise ValueError("reconnect_initial_s is above reconnect_max_s")
        if "#" in self.topic_prefix or "+" in self.topic_prefix:
            raise ValueError("topic_prefix must not contain MQTT wildcards")
        return self

    def password_value(self) -> str | None:
        """The password from the config, the environment or the file; None without one."""
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is not None:
            try:
                return self.password_file.read_text(encoding="utf-8").strip()
            except OSError as err:
                raise ConfigError([("mqtt.password_file", f"cannot read: {err}")]) from err
        return None


class OutboxConfig(Strict):
    path: Path = Field(
        default=Path("outbox.sqlite"), description="relative paths are inside data_dir"
    )
    max_mb: float = Field(default=256.0, gt=0, description="over this, old telemetry is thinned")
    max_age_days: float = Field(default=30.0, gt=0, description="older records are dropped")
    commit_interval_s: float = Field(
        default=5.0, gt=0, le=30,
        description="telemetry is committed in groups this often; events commit at once",
    )
    synchronous: Literal["FULL", "NORMAL"] = Field(
        default="FULL", description="FULL: a committed record survives power loss"
    )
    telemetry_buffer: int = Field(
        default=600, ge=10, description="telemetry samples waiting for the next commit"
    )
    delete_interval_s: float = Field(
        default=30.0, gt=0, description="acknowledged records are deleted in groups this often")
    retention_check_s: float = Field(default=60.0, gt=0)
    # A PUBACK proves only that the broker took a record, not that the office archived it:
    # acknowledged records stay (in their own table) so the office can ask for them again.
    keep_sent_days: float = Field(
        default=7.0, ge=0, description="acknowledged records are kept this long for cmd/resend "
        "(0: deleted at PUBACK)")
    keep_sent_mb: float = Field(
        default=50.0, ge=0, description="at most this many MB of acknowledged records are kept "
        "(0: none); the older go first")

    @model_validator(mode="after")
    def _check(self) -> OutboxConfig:
        # Left at its default it simply yields to a small max_mb (acknowledged records are
        # the first to go when the outbox needs room); set, it must make sense.
        if "keep_sent_mb" in self.model_fields_set and self.keep_sent_mb >= self.max_mb:
            raise ValueError(f"keep_sent_mb ({self.keep_sent_mb:g}) must be below max_mb "
                             f"({self.max_mb:g}): records not yet sent need the room")
        return self


# What the office's live view needs every second; the full record is in telemetry.
DEFAULT_STATE_SIGNALS = (
    "battery.soc", "battery.power", "battery.fault", "charger.plugged", "charger.state",
    "charger.power", "vehicle.speed", "vehicle.odometer", "vehicle.ready",
    "vehicle.outside_temp", "vehicle.hvac_power", "gps.fix", "gps.lat", "gps.lon",
    "gps.heading", "lift.state",
)


class UplinkConfig(Strict):
    state_signals: list[str] = Field(
        default_factory=lambda: list(DEFAULT_STATE_SIGNALS),
        description="signals in the retained state snapshot (each second while moving)",
    )
    state_interval_moving_s: float = Field(default=1.0, gt=0)
    state_interval_parked_s: float = Field(default=30.0, gt=0)
    state_expiry_s: int = Field(
        default=600, ge=0, description="MQTT 5 message expiry of retained state (0: none)"
    )
    telemetry_interval_moving_s: float = Field(default=1.0, gt=0)
    telemetry_interval_parked_s: float = Field(default=10.0, gt=0)
    telemetry_keyframe_s: float = Field(
        default=60.0, gt=0, description="a full sample this often; changes only in between"
    )
    telemetry_signals: list[str] | None = Field(
        default=None, description="signals in telemetry; all when unset"
    )
    batch_max_records: int = Field(default=1000, ge=1)
    batch_max_kb: int = Field(default=256, ge=1, le=100_000)
    inflight: int = Field(default=16, ge=1, le=1000, description="QoS 1 messages awaiting PUBACK")
    backlog_records_per_s: float = Field(
        default=250, ge=0,
        description="the backlog and resends go at most this fast (live records never wait); "
                    "0: no limit",
    )
    command_max_bytes: int = Field(default=256 * 1024, ge=256)

    @model_validator(mode="after")
    def _check(self) -> UplinkConfig:
        for key in ("telemetry_signals", "state_signals"):
            unknown = set(getattr(self, key) or ()) - set(SIGNALS)
            if unknown:
                raise ValueError(f"{key} names unknown signals: {sorted(unknown)}")
        return self
