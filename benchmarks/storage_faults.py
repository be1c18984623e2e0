"""Storage faults for the soak: a file system of its own that fills up or turns read-only.

The soak needs a real ENOSPC under the daemon's data folder, not a simulated
one: SQLite, the planner's JSON files and the logs must all meet it the way
they would on the bus's SD card. A tmpfs of a few megabytes does that, but
mounting one needs a mount namespace of our own: :func:`reexec_in_mount_namespace`
re-runs the script under ``unshare`` (adding a user namespace when not root, so
that no privilege is needed where unprivileged user namespaces are allowed).
The same file system is remounted read-only for the second kind of episode,
as the kernel does to an SD card after I/O errors.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_MARK = "BUSD_SOAK_MOUNT_NS"


def _unshare_command() -> list[str]:
    cmd = ["unshare", "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        cmd += ["--user", "--map-root-user"]
    # As root no user namespace is added: mosquitto and gpsd keep the users they
    # know, which a namespace mapping root alone would not have.
    return cmd


def in_mount_namespace() -> bool:
    return os.environ.get(_MARK) == "1"


def reexec_in_mount_namespace() -> str | None:
    """Re-run this process in a private mount namespace; on failure, say why (no exec)."""
    if in_mount_namespace():
        return None
    if shutil.which("unshare") is None:
        return "no unshare command"
    cmd = _unshare_command()
    probe = subprocess.run([*cmd, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"unshare refused: {probe.stderr.strip() or probe.returncode}"
    os.environ[_MARK] = "1"
    sys.stdout.flush()
    os.execvp(cmd[0], [*cmd, sys.executable, *sys.argv])
    raise AssertionError("unreachable")


def mount_small_fs(folder: Path, megabytes: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m,mode=0755",
                    "busd-soak", str(folder)], check=True)


def unmount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], check=False)


def remount(folder: Path, *, read_only: bool) -> None:
    subprocess.run(["mount", "-o", "remount," + ("ro" if read_only else "rw"), str(folder)],
                   check=True, capture_output=True)


class DiskFiller:
    """Fills a file system with one file until a write fails with ENOSPC, and frees it."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / ".soak-filler"
        self.filled_bytes = 0

    def fill(self) -> int:
        """Write until the disk is full (down to 512-byte writes); return the bytes written."""
        written = 0
        with open(self.path, "ab", buffering=0) as out:
            for chunk in (1 << 20, 1 << 16, 1 << 12, 512):
                block = b"\0" * chunk
                while True:
                    try:
                        written += out.write(block)
                    except OSError as err:
                        if err.errno != errno.ENOSPC:
                            raise
                        break
        self.filled_bytes += written
        return written

    def free(self) -> None:
        self.path.unlink(missing_ok=True)
        self.filled_bytes = 0


@dataclass
class Episode:
    """A storage fault from ``start_after_s`` for ``lasting_s`` of wall time.

    ``keep`` runs every two seconds meanwhile (the daemon frees pages now and then,
    a WAL checkpoint or a drained outbox: a full disk must stay full).
    """

    name: str
    start_after_s: float
    lasting_s: float
    begin: Callable[[], str]
    end: Callable[[], None]
    keep: Callable[[], bool] | None = None
    began_at: float | None = None
    ended_at: float | None = None
    top_ups: int = 0

    async def run(self) -> None:
        await asyncio.sleep(self.start_after_s)
        self.began_at = time.monotonic()
        what = await asyncio.to_thread(self.begin)
        print(f"{self.name}: {what}, for {self.lasting_s:.0f} s", flush=True)
        try:
            while time.monotonic() < self.began_at + self.lasting_s:
                await asyncio.sleep(min(2.0, max(0.0, self.began_at + self.lasting_s
                                                 - time.monotonic())))
                if self.keep is not None and await asyncio.to_thread(self.keep):
                    self.top_ups += 1
        finally:
            self.end()
            self.ended_at = time.monotonic()
            print(f"{self.name}: over", flush=True)


def disk_full(folder: Path, *, start_after_s: float, lasting_s: float) -> Episode:
    filler = DiskFiller(folder)
    return Episode("disk full", start_after_s, lasting_s,
                   begin=lambda: f"{filler.fill() / 2**20:.1f} MB of filler",
                   end=filler.free, keep=lambda: filler.fill() > 0)


def read_only(folder: Path, *, start_after_s: float, lasting_s: float) -> Episode:
    """Linux refuses to remount a file system read-only while a file on it is open for
    writing (EBUSY), and the daemon keeps its databases open: the remount succeeds in
    a moment the daemon is down (the soak kills it often), so it starts again on a
    read-only file system, as after a reboot on an SD card the kernel gave up on."""

    def begin() -> str:
        tries = 0
        while True:
            tries += 1
            try:
                remount(folder, read_only=True)
            except subprocess.CalledProcessError:
                time.sleep(0.05)
                continue
            return f"remounted read-only (after {tries} tries, while the daemon was down)"

    return Episode("read-only", start_after_s, lasting_s, begin=begin,
                   end=lambda: remount(folder, read_only=False))
