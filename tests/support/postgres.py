"""A private PostgreSQL for the tests: initdb in a temporary directory, pg_ctl on a free port.

Registered as a pytest plugin in tests/conftest.py (fixtures `postgres_server`, `postgres_url`).

Never touches a server the machine may already run: the cluster is the tests' own, listens on
127.0.0.1 only, on a port the kernel picked, with no unix socket. One server per test session
(initdb takes a few seconds); each test gets a fresh database made from ``template0``.

PostgreSQL refuses to run as root, and CI runs as root: then the cluster belongs to an
unprivileged account (``postgres`` from Debian's package, else ``nobody``) and its commands run
through ``setpriv``. As a normal user they simply run as that user.

Speed over durability, as befits throw-away data: ``fsync=off``, ``synchronous_commit=off``,
``full_page_writes=off``.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.mosquitto import free_port


def postgres_bin(name: str) -> str:
    """``initdb``/``pg_ctl``: Debian keeps them out of PATH, under /usr/lib/postgresql/N/bin."""
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    found = candidates[-1] if candidates else shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed (scripts/setup installs postgresql)")
    return found


def _unprivileged() -> pwd.struct_passwd | None:
    """The account the cluster runs as when we are root; None when we are not."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root and no 'postgres' or 'nobody' account for PostgreSQL")


@dataclass
class PostgresServer:
    port: int
    datadir: Path
    startup_s: float
    user: str = "busd"
    _counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, prefix: str = "t") -> str:
        """A fresh, empty database; returns its URL."""
        import psycopg

        name = f"{prefix}{next(self._counter)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            # FILE_COPY from template0 (no WAL of the copy: fsync is off anyway) is the quick
            # way to an empty database.
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 STRATEGY FILE_COPY')
        return self.url(name)


def _run(cmd: list[str], owner: pwd.struct_passwd | None) -> None:
    if owner is not None:
        cmd = ["setpriv", f"--reuid={owner.pw_uid}", f"--regid={owner.pw_gid}",
               "--clear-groups", *cmd]
    subprocess.run(cmd, check=True, capture_output=True)


def start_postgres(folder: Path) -> PostgresServer:
    started = time.monotonic()
    owner = _unprivileged()
    datadir = folder / "data"
    if owner is not None:
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    port = free_port()
    _run([postgres_bin("initdb"), "-D", str(datadir), "-U", "busd", "--auth=trust",
          "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"], owner)
    options = (f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories='' "
               "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
               "-c max_connections=50 -c shared_buffers=32MB")
    _run([postgres_bin("pg_ctl"), "-D", str(datadir), "-o", options, "-l",
          str(folder / "server.log"), "-w", "-t", "60", "start"], owner)
    return PostgresServer(port=port, datadir=datadir, startup_s=time.monotonic() - started)


def stop_postgres(server: PostgresServer) -> None:
    try:
        _run([postgres_bin("pg_ctl"), "-D", str(server.datadir), "-m", "immediate", "-w",
              "stop"], _unprivileged())
    except subprocess.CalledProcessError:
        # Already gone (it crashed, or a test stopped it) is fine; still running is not.
        if (server.datadir / "postmaster.pid").exists():
            raise


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    # Not pytest's tmp_path: it is private to the user running pytest (0700, root's in CI),
    # and the cluster's owner must reach its directory.
    folder = Path(tempfile.mkdtemp(prefix="busd-pg-"))
    try:
        server = start_postgres(folder)
    except subprocess.CalledProcessError as err:
        log = folder / "server.log"
        detail = log.read_text(errors="replace") if log.exists() else ""
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {err.stderr!r} {detail}") from err
    try:
        yield server
    finally:
        stop_postgres(server)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database on the session's server."""
    return postgres_server.create_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def archive_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty office archive on each back end, so one test runs against both."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/archive.db"
    # Only the PostgreSQL runs start the server.
    return str(request.getfixturevalue("postgres_url"))
