"""A private mosquitto for simulations: the office's broker, on this machine.

``busd run --config config/sim.toml`` starts it so that the uplink has a
broker to talk to on a fresh machine, on its own port (never the system's
1883) with its persistence under the simulation's data_dir. A broker that
dies is started again by the supervisor.
"""

from __future__ import annotations

import asyncio
import getpass
import shutil
from pathlib import Path

from busd.errors import DeviceError
from busd.supervisor import ComponentContext


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if found is None:
        raise DeviceError("mosquitto is not installed (apt-get install mosquitto)")
    return found


class BrokerSimulator:
    name = "sim.broker"
    critical = False

    def __init__(self, *, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir

    def _write_config(self) -> Path:
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "mosquitto.conf"
        config.write_text("\n".join([
            f"user {getpass.getuser()}",  # as root it would switch to a user who cannot write here
            "persistence true",
            f"persistence_location {data}/",
            f"log_dest file {self.workdir / 'mosquitto.log'}",
            "max_queued_messages 100000",
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
        ]) + "\n")
        return config

    async def run(self, ctx: ComponentContext) -> None:
        proc = await asyncio.create_subprocess_exec(
            mosquitto_binary(), "-c", str(self._write_config()),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            # Its own session: Ctrl-C on the terminal stops busd, and busd stops
            # the broker after the uplink has said goodbye, not before.
            start_new_session=True,
        )
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
