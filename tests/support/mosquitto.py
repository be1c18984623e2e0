"""A private mosquitto per test: free port, persistence in tmp_path, ACL, optional TLS.

Registered as a pytest plugin in tests/conftest.py. Never touches a system
broker: every instance listens on 127.0.0.1 on a port the kernel picked.
"""

from __future__ import annotations

import getpass
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from simulators.ports import listen_port

REPO = Path(__file__).resolve().parents[2]
OPEN_ACL = "# tests: anyone may do anything\ntopic readwrite #\npattern readwrite #\n"


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if found is None:
        raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
    return found


def free_port() -> int:
    """A free port below the ephemeral range: a server restarted on it finds it free."""
    return listen_port()


def _wait_port(port: int, *, up: bool, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.02)
    raise TimeoutError(f"port {port} did not go {'up' if up else 'down'} in {timeout}s")


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    wrong_ca: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_test_pki(folder: Path, *, client_cn: str = "bus-01") -> TlsFiles:
    """A test CA, a server certificate for localhost/127.0.0.1, a client certificate, and an
    unrelated CA that must be refused."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("ca", "wrong-ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                 "-keyout", f"{name}.key", "-out", f"{name}.crt", "-subj", f"/CN=busd {name}",
                 cwd=folder)
    (folder / "server.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name, cn, ext in (("server", "localhost", True), ("client", client_cn, False)):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
                 "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=folder)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-out", f"{name}.crt",
                 *(["-extfile", "server.ext"] if ext else []), cwd=folder)
    return TlsFiles(folder / "ca.crt", folder / "server.crt", folder / "server.key",
                    folder / "client.crt", folder / "client.key", folder / "wrong-ca.crt")


class Mosquitto:
    """One broker process; ``stop()``/``start()`` keep its persistent store and port."""

    def __init__(
        self,
        workdir: Path,
        *,
        acl: str = OPEN_ACL,
        passwords: dict[str, str] | None = None,
        tls: TlsFiles | None = None,
        config_text: str | None = None,
        port: int | None = None,
    ) -> None:
        """``config_text`` replaces the generated config whole (a shipped config, rendered for
        the test); ``port`` is then the one its listener uses."""
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.tls_port = free_port() if tls else None
        self.tls = tls
        self.proc: subprocess.Popen[bytes] | None = None
        (workdir / "data").mkdir(exist_ok=True)
        (workdir / "acl").write_text(acl)
        lines = [
            # Run as whoever runs the tests: as root, mosquitto would otherwise switch to
            # the "mosquitto" user, who cannot read files in the test's tmp_path.
            f"user {getpass.getuser()}",
            "per_listener_settings false",
            "persistence true",
            f"persistence_location {workdir / 'data'}/",
            "autosave_interval 1",
            f"log_dest file {workdir / 'mosquitto.log'}",
            "log_type all",
            f"acl_file {workdir / 'acl'}",
            "max_queued_messages 100000",
            "max_inflight_messages 0",
            f"listener {self.port} 127.0.0.1",
        ]
        if passwords:
            pwfile = workdir / "passwd"
            pwfile.write_text("")
            for user, password in passwords.items():
                subprocess.run(["mosquitto_passwd", "-b", str(pwfile), user, password],
                               check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {pwfile}"]
        else:
            lines += ["allow_anonymous true"]
        if tls:
            lines += [
                f"listener {self.tls_port} 127.0.0.1",
                f"cafile {tls.ca}", f"certfile {tls.server_cert}", f"keyfile {tls.server_key}",
                "require_certificate true", "use_identity_as_username true",
            ]
        self.config = workdir / "mosquitto.conf"
        self.config.write_text(config_text if config_text is not None
                               else "\n".join(lines) + "\n")

    def start(self) -> None:
        assert self.proc is None, "already running"
        self.proc = subprocess.Popen(
            [mosquitto_binary(), "-c", str(self.config)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            _wait_port(self.port, up=True)
        except TimeoutError:
            self.stop()
            log = self.workdir / "mosquitto.log"
            raise RuntimeError(f"mosquitto did not start; see {log}") from None

    def stop(self) -> None:
        """Stop cleanly (saves the persistent store)."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        _wait_port(self.port, up=False)

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        path = self.workdir / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A running broker that allows anonymous clients everything; stopped after the test."""
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def test_pki(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


__all__ = ["OPEN_ACL", "REPO", "Mosquitto", "TlsFiles", "free_port", "make_test_pki"]
