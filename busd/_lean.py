"""Keep optional heavy libraries out of the daemon's memory.

Two libraries the daemon needs import others, when they are installed, that
a default run never uses: structlog imports rich (and with it pygments) to
pretty-print tracebacks on a terminal, and sqlite-utils imports numpy to store
numpy scalars. Together they were about 20 MB of the daemon's 87 MB RSS
(benchmarks/can_ingest.py). Both treat the library as optional (they catch
ImportError), so it is hidden while they are imported, and importable again
right after for those who do use it (the live terminal view imports rich).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def without(*names: str) -> Iterator[None]:
    """While the block runs, ``import name`` raises ImportError (unless already imported)."""
    hidden = [name for name in names if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # the import system's "not found"
    try:
        yield
    finally:
        for name in hidden:
            if sys.modules.get(name, ...) is None:
                del sys.modules[name]
