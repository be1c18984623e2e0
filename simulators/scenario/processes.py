"""The outside processes of a scenario: mosquitto, gpsd and the daemon itself.

Each is a child process in its own session, started and stopped by the
runner, never by name: the runner keeps the ``Process`` and signals its pid.

Its own session keeps a terminal's Ctrl-C (and ``timeout``'s signal to the
process group) from reaching the children before the runner stops them in
order, but it also means nothing stops them if the runner itself is killed. So
each child also asks the kernel for SIGTERM when the runner dies
(:func:`simulators.broker.die_with_parent`). Without that, a killed run left
busd, gpsd and mosquitto running for ever, and that busd's drivers kept
reconnecting to the run's pty symlinks: ``/dev/pts/N`` numbers the kernel
hands to the next ptys, so it opened other tests' ptys and stole their bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from busd.errors import DeviceError
from simulators.broker import BrokerSimulator, die_with_parent, mosquitto_binary
from simulators.ports import listen_port


def free_port() -> int:
    """A free port below the ephemeral range: a broker restarted on it finds it free."""
    return listen_port()


async def wait_port(port: int, proc: asyncio.subprocess.Process, *, limit_s: float,
                    what: str) -> None:
    """Wait until ``port`` accepts a connection; fail at once if ``proc`` died."""
    async with asyncio.timeout(limit_s):
        while True:
            if proc.returncode is not None:
                raise DeviceError(f"{what} exited with {proc.returncode}")
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                await writer.wait_closed()
                return
            await asyncio.sleep(0.05)


async def stop_process(proc: asyncio.subprocess.Process | None, *, limit_s: float = 5.0,
                       kill: bool = False) -> None:
    if proc is None or proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    try:
        async with asyncio.timeout(limit_s):
            await proc.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


class Broker:
    """A private mosquitto on a free port, persistence in ``workdir`` (survives a restart)."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.workdir = workdir
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        config = BrokerSimulator(port=self.port, workdir=self.workdir)._write_config()
        self.proc = await asyncio.create_subprocess_exec(
            mosquitto_binary(), "-c", str(config), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_parent())
        await wait_port(self.port, self.proc, limit_s=10, what="mosquitto")

    async def stop(self) -> None:
        await stop_process(self.proc)
        self.proc = None


def gpsd_binary() -> str:
    found = shutil.which("gpsd") or ("/usr/sbin/gpsd" if Path("/usr/sbin/gpsd").exists()
                                     else None)
    if found is None:
        raise DeviceError("gpsd is not installed (apt-get install gpsd)")
    return found


class Gpsd:
    """A real gpsd reading the GPS simulator's pty: own port, own control socket."""

    def __init__(self, device: Path, workdir: Path) -> None:
        self.device = device
        self.workdir = workdir
        self.port = free_port()
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        log = (self.workdir / "gpsd.log").open("ab")
        try:
            # -N foreground, -n read without waiting for a client, -b read-only
            # (no probes written to our pty), -S its own port, never 2947.
            self.proc = await asyncio.create_subprocess_exec(
                gpsd_binary(), "-N", "-n", "-b", "-S", str(self.port),
                "-F", str(self.workdir / "gpsd.sock"), str(self.device),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                start_new_session=True, preexec_fn=die_with_parent())
        finally:
            log.close()
        await wait_port(self.port, self.proc, limit_s=10, what="gpsd")

    async def stop(self) -> None:
        await stop_process(self.proc)


# A daemon process held before its start: the interpreter and busd's imports (a
# second or two of real time, which at x600 is 10-20 simulated minutes) are done
# while it waits for "go" on stdin; then it runs ``busd.cli run`` at once.
_HELD = (
    "import sys\n"
    "import busd.app, busd.cli\n"
    "if sys.stdin.readline().strip() != 'go':\n"
    "    sys.exit(0)\n"
    "sys.exit(busd.cli.main(sys.argv[1:]))\n"
)


class DaemonProcess:
    """``busd.cli run`` on a generated config; killable and restartable.

    :meth:`prepare` spawns the next daemon ahead of time, held before its start,
    so that :meth:`start` (the day's first start, or a restart after a kill)
    brings it up when the scenario says, not a Python start-up later.
    """

    def __init__(self, config: Path, workdir: Path, *, python: str = sys.executable) -> None:
        self.config = config
        self.workdir = workdir
        self.python = python
        self.proc: asyncio.subprocess.Process | None = None
        self._spare: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.kills = 0

    async def _spawn(self, *, held: bool) -> asyncio.subprocess.Process:
        log = (self.workdir / "busd.log").open("ab")
        env = dict(os.environ)
        env.pop("BUSD_CONFIG", None)
        root = str(Path(__file__).resolve().parents[2])  # noqa: ASYNC240 - no I/O
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH")
                                    else "")
        args = ["run", "--config", str(self.config), "--view", "off"]
        head = ["-c", _HELD] if held else ["-m", "busd.cli"]
        try:
            return await asyncio.create_subprocess_exec(
                self.python, *head, *args, stdout=log, stderr=log,
                stdin=subprocess.PIPE if held else subprocess.DEVNULL,
                start_new_session=True, preexec_fn=die_with_parent(), cwd=root, env=env)
        finally:
            log.close()

    async def prepare(self) -> None:
        """Spawn the next daemon now, held before its start (no-op if one is waiting)."""
        if self._spare is None or self._spare.returncode is not None:
            self._spare = await self._spawn(held=True)

    async def start(self) -> None:
        spare, self._spare = self._spare, None
        if spare is not None and spare.returncode is None and spare.stdin is not None:
            spare.stdin.write(b"go\n")
            await spare.stdin.drain()
            spare.stdin.close()
            self.proc = spare
        else:
            self.proc = await self._spawn(held=False)
        self.starts += 1

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def kill(self) -> None:
        """SIGKILL: no goodbye, no flush (what a power cut does)."""
        await stop_process(self.proc, kill=True)
        self.kills += 1

    async def stop(self) -> int | None:
        spare, self._spare = self._spare, None
        await stop_process(spare)
        await stop_process(self.proc, limit_s=10.0)
        return None if self.proc is None else self.proc.returncode
