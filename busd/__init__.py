"""busd: the on-board daemon of the MultiMobile electric service minibuses."""

from busd._lean import without

__version__ = "0.1.0"

# First, before any part logs: structlog without rich, whose tracebacks only a
# terminal would show (the daemon logs JSON; a console log still gets plain ones).
with without("rich"):
    import structlog  # noqa: F401
