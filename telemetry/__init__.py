"""MQTT uplink: durable outbox, publisher, commands from the office, and the office's side.

Implements the ports of :mod:`busd.ports`; only the composition root imports it.
"""
