"""The bus's uplink: durable outbox, publisher, commands from the office (the office is ``office/``).

Implements the ports of :mod:`busd.ports`; only the composition root imports it.
"""
