"""Start-up checks on files that hold secrets.

A password file or a private key that other users can read is refused: on a
bus that several people service, a world-readable key is a leaked key. The
check happens before anything starts, like every other config check.
"""

from __future__ import annotations

import stat
from pathlib import Path

from busd.errors import ConfigError

# Others may not read, write or execute; the group may read (systemd's
# LoadCredential and root:busd 0640 set-ups) but not write.
_FORBIDDEN = stat.S_IRWXO | stat.S_IWGRP


def check_secret_file(path: Path, key: str) -> None:
    """Raise ConfigError naming ``key`` when ``path`` is missing or too open."""
    try:
        mode = path.stat().st_mode
    except OSError as err:
        raise ConfigError([(key, f"cannot read {path}: {err.strerror}")]) from err
    if mode & _FORBIDDEN:
        raise ConfigError([(
            key,
            f"{path} is accessible to other users (mode {stat.S_IMODE(mode):o}); "
            f"chmod 600 it",
        )])
