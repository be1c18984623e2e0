"""Servers that restart on their port get one no outgoing connection can take meanwhile."""

from __future__ import annotations

import socket

from simulators.ports import ephemeral_low, listen_port


def test_a_listen_port_is_free_and_below_the_ephemeral_range() -> None:
    low = ephemeral_low()
    for _ in range(20):
        port = listen_port()
        assert low // 2 <= port < low
        with socket.socket() as server:
            server.bind(("127.0.0.1", port))  # raises if it was not free
            server.listen()


def test_an_outgoing_connection_never_takes_a_listen_port() -> None:
    # What broke a restart: the kernel gives a connection its own port from the ephemeral
    # range, so a port below it stays free for the server coming back.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname()) as client:
            assert client.getsockname()[1] >= ephemeral_low()
