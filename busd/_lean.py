"""Keep optional heavy libraries out of the daemon's memory.

A library the daemon needs imports another, when it is installed, that a
default run never uses: structlog imports rich (and with it pygments) to
pretty-print tracebacks on a terminal. With numpy, which sqlite-utils imported
(the stores now use sqlite3 itself), they were about 20 MB of the daemon's
87 MB RSS (benchmarks/can_ingest.py). structlog treats rich as optional (it
catches ImportError), so rich is hidden while structlog is imported, and
importable again right after for those who do use it (the live terminal view).
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
