"""The lift as a machine: stowed → deploying → deployed → stowing → stowed.

Time is the injected clock's monotonic seconds, passed in by the caller, so
the model itself is pure and steps deterministically in tests.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LiftModel:
    deploy_s: float = 8.0
    stow_s: float = 8.0
    cycles: int = 0
    state: str = "stowed"
    fault: bool = False
    _since: float = 0.0
    _stow_at: float | None = None  # an automatic cycle's planned stow time

    def deploy(self, now: float) -> None:
        if not self.fault and self.state in ("stowed", "stowing"):
            self.state, self._since = "deploying", now

    def stow(self, now: float) -> None:
        if not self.fault and self.state in ("deployed", "deploying"):
            self.state, self._since = "stowing", now
            self._stow_at = None

    def cycle(self, now: float, *, dwell_s: float) -> None:
        """Deploy, stay deployed ``dwell_s``, stow: one boarding."""
        self.deploy(now)
        self._stow_at = now + self.deploy_s + dwell_s

    def inject_fault(self, on: bool = True) -> None:
        # The controller stops the motor where it is and raises its fault output.
        self.fault = on

    def step(self, now: float) -> None:
        if self.fault:
            self._since = now  # a halted motion restarts from scratch once cleared
            return
        if self.state == "deploying" and now - self._since >= self.deploy_s:
            self.state, self._since = "deployed", now
        if self.state == "deployed" and self._stow_at is not None and now >= self._stow_at:
            self.stow(now)
        if self.state == "stowing" and now - self._since >= self.stow_s:
            self.state, self._since = "stowed", now
            self.cycles += 1

    def inputs(self) -> dict[str, bool]:
        """The module's contacts as the real lift wires them."""
        moving = self.state in ("deploying", "stowing") and not self.fault
        return {
            "stowed": self.state == "stowed",
            "deployed": self.state == "deployed",
            "moving": moving,
            "door_open": self.state != "stowed",
            "interlock": self.state != "stowed",  # driving is blocked unless stowed
            "fault": self.fault,
        }
