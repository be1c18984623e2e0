"""The fleet simulator: N buses in a few processes, each with the production outbox and uplink.

``python -m simulators.fleet --buses 50 --processes 2 --broker HOST:PORT --speed 600
--duration 10800`` runs 50 buses for three simulated hours at 600 times real speed; the last line
on stdout is a JSON report of what every bus produced (its last ``seq``). See
:mod:`simulators.fleet.runner` for the processes, :mod:`simulators.fleet.bus` for one bus and
:mod:`simulators.fleet.day` for its day.
"""
