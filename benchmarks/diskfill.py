"""A folder on a small file system of its own, that can be filled to the last byte.

The soak needs a real ENOSPC under the daemon's data folder, not a simulated
one: SQLite, the planner's JSON files and the logs must all meet it the way
they would on the bus's SD card. A tmpfs of a few megabytes does that, but
mounting one needs a mount namespace of our own: :func:`reexec_in_mount_namespace`
re-runs the script under ``unshare`` (adding a user namespace when not root, so
that no privilege is needed where unprivileged user namespaces are allowed).
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
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
