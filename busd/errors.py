"""One exception tree for everything busd raises on purpose.

Adapters translate library errors at their boundary (``raise ... from err``)
so that callers handle a few meaningful types, not every library's own.
"""


class BusdError(Exception):
    """Base of every error busd raises deliberately."""


class ConfigError(BusdError):
    """The configuration is invalid; ``problems`` lists (key path, reason)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{key}: {reason}" for key, reason in problems))

    def render(self) -> str:
        return "\n".join(f"{key}: {reason}" for key, reason in self.problems)


class DeviceError(BusdError):
    """A hardware interface could not be opened or failed while in use."""


class DecodeError(BusdError):
    """Input from a device or the office could not be decoded."""


class StorageError(BusdError):
    """A database cannot be written (disk full, read-only file system); nothing lost yet.

    What could not be written stays in memory with its owner and is written
    once the disk takes it again.
    """
