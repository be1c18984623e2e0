"""A private mosquitto for simulations: the office's broker, on this machine.

``busd run --config config/sim.toml`` starts it so that the uplink has a
broker to talk to on a fresh machine, on its own port (never the system's
1883) with its persistence under the simulation's data_dir. A broker that
dies is started again by the supervisor.

It must not outlive busd: a ``busd run`` that is killed (SIGKILL, OOM) runs
no clean-up, and a broker left behind holds the port, so every later run's
broker failed with "address in use" and looped in back-off. Two guards:

- on Linux the child asks the kernel for SIGTERM when busd dies
  (``PR_SET_PDEATHSIG``, set between fork and exec);
- busd writes the broker's pid to ``workdir/mosquitto.pid``; a start that
  finds a live mosquitto of that pid running this workdir's config (one left by
  a busd on a system without the first guard) stops it first.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import getpass
import os
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from busd.errors import DeviceError
from busd.supervisor import ComponentContext

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if found is None:
        raise DeviceError("mosquitto is not installed (apt-get install mosquitto)")
    return found


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGTERM when its parent dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    parent = os.getpid()
    # Looked up here, in the parent: between fork and exec the child of a threaded
    # process may only call what takes no lock (dlopen/dlsym would).
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


class BrokerSimulator:
    name = "sim.broker"
    critical = False

    def __init__(self, *, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.pid_file = workdir / "mosquitto.pid"
        self.config_file = workdir / "mosquitto.conf"

    def _write_config(self) -> Path:
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text("\n".join([
            f"user {getpass.getuser()}",  # as root it would switch to a user who cannot write here
            "persistence true",
            f"persistence_location {data}/",
            f"log_dest file {self.workdir / 'mosquitto.log'}",
            "max_queued_messages 100000",
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
        ]) + "\n")
        return self.config_file

    def stale_pid(self) -> int | None:
        """The pid of a mosquitto left running on this workdir's config, if any."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        args = _cmdline(pid)
        is_ours = bool(args) and Path(args[0]).name == "mosquitto" \
            and str(self.config_file) in args
        return pid if is_ours else None  # a reused pid of another program is left alone

    async def _stop_stale(self, ctx: ComponentContext) -> None:
        pid = self.stale_pid()
        if pid is None:
            return
        ctx.log.warning("sim_broker_stale_stopped", pid=pid)
        for sig, wait_s in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    while self.stale_pid() == pid:  # noqa: ASYNC110 - not our child to wait()
                        await asyncio.sleep(0.05)
            if self.stale_pid() != pid:
                return
        raise DeviceError(f"a stale mosquitto (pid {pid}) on {self.workdir} does not stop")

    async def run(self, ctx: ComponentContext) -> None:
        config = self._write_config()
        await self._stop_stale(ctx)
        proc = await asyncio.create_subprocess_exec(
            mosquitto_binary(), "-c", str(config),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            # Its own session: Ctrl-C on the terminal stops busd, and busd stops
            # the broker after the uplink has said goodbye, not before.
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
        self.pid_file.write_text(f"{proc.pid}\n")
        ctx.log.info("sim_broker_started", port=self.port, pid=proc.pid)
        ctx.ready()
        try:
            code = await proc.wait()
            raise DeviceError(f"mosquitto exited with {code}; see {self.workdir / 'mosquitto.log'}")
        finally:
            if proc.returncode is None:
                proc.terminate()
                try:
                    async with asyncio.timeout(2):
                        await proc.wait()
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
            with contextlib.suppress(OSError):
                self.pid_file.unlink()
