"""The office's dispatcher: sending plans and other commands to buses, and their statuses.

``send_plan(plan, bus=…, settings=…, archive=…, prefix=…)`` sends one day's plan and returns
a :class:`SendOutcome`; ``command_statuses(archive)`` lists what became of every command sent
(pending, delivered, accepted, rejected with the reason, expired). ``busd office plan send``
and ``busd office command status`` are their command lines (:mod:`office.dispatch.cli`).
"""

from office.archive.commands import CommandState, CommandStatus, SentCommand
from office.dispatch.send import (
    DispatchError,
    SendOutcome,
    command_statuses,
    plan_command,
    plan_expiry,
    send_command,
    send_plan,
)

__all__ = ["CommandState", "CommandStatus", "DispatchError", "SendOutcome", "SentCommand",
           "command_statuses", "plan_command", "plan_expiry", "send_command", "send_plan"]
