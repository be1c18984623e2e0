"""The bus's uplink: durable outbox, publisher, commands from the office (in ``office/``).

Implements the ports of :mod:`busd.ports`; only the composition root imports it.
"""
