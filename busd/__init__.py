"""busd: the on-board daemon of the MultiMobile electric service minibuses."""

__version__ = "0.1.0"
