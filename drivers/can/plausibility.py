"""The rate rule (`max_rate`, `max_step`): is this value's change believable?

Pure: values and times in, a yes or no out. The decoder keeps one gate per
mapping entry that has a ``max_rate``.

The earlier rule compared each value with the last one it *accepted* and took
three rejects in a row as a real step. Real buses broke it both ways: a junk
first value (0 V at power-on) became the reference, so every real value was
rejected; and one frame id alternating between a good layout and a junk one
let the junk anchor the rule for good. And any three equal frames carried a
value anywhere, SOC 81 % to 0 % within a second included. So:

- a value is accepted when it is within ``max_rate`` of the reference (the
  last accepted value) over the time since that was accepted;
- a value that is not is a *candidate*; ``confirm`` consecutive candidates
  that agree with each other (spread no more than ``max_rate`` allows over
  their time span) confirm a step, which is adopted if it goes no further than
  ``max_step`` beyond what the rate allows (``max_step`` None: a step is only
  ever adopted as fast as the rate allows, however many frames repeat it);
- with no reference yet (power-on), nothing is published until ``confirm``
  consecutive values agree: a lone junk first value never anchors the rule;
- any accepted value clears the candidates, so junk alternating with good
  values never collects ``confirm`` in a row and is never published;
- after ``forget_after_s`` without any value (the bus asleep, the ECU off) the
  reference is forgotten: waking up is another power-on, and a junk first value
  then must not ride on the huge change an hour's rate allows. A flood of
  rejected values is not silence: it never wears the reference out.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

# Consecutive agreeing candidates that confirm a step (or the first value).
CONFIRM_FRAMES = 3
# Silence this long (s) makes the next value another power-on.
FORGET_AFTER_S = 10.0
# Frames arriving in one read can carry one timestamp: treat them as this far apart.
_MIN_ELAPSED_S = 1e-3


@dataclass(slots=True)
class RateGate:
    """One mapping entry's rate rule and the little state it needs."""

    max_rate: float  # units per second
    max_step: float | None = None  # units a confirmed step may go beyond the rate
    confirm: int = CONFIRM_FRAMES
    forget_after_s: float = FORGET_AFTER_S
    reference: float | None = None
    reference_time: float = 0.0
    last_seen: float | None = None
    _candidates: deque[tuple[float, float]] = field(default_factory=deque)

    def __post_init__(self) -> None:
        if self.max_rate <= 0 or self.confirm < 1 or (
            self.max_step is not None and self.max_step < 0
        ):
            raise ValueError("max_rate must be > 0, max_step >= 0 and confirm >= 1")

    def admit(self, value: float, now: float) -> bool:
        """True when ``value`` (at monotonic ``now``) may be published."""
        if self.last_seen is not None and now - self.last_seen > self.forget_after_s:
            self.reference = None
            self._candidates.clear()
        self.last_seen = now
        if self.reference is not None:
            reach = self.max_rate * max(now - self.reference_time, _MIN_ELAPSED_S)
            if abs(value - self.reference) <= reach:
                return self._accept(value, now)
        candidates = self._candidates
        candidates.append((value, now))
        while len(candidates) > self.confirm:
            candidates.popleft()
        if len(candidates) < self.confirm or not self._agree():
            return False
        if self.reference is not None:
            if self.max_step is None:
                return False  # steps only as fast as the rate allows (checked above)
            if abs(value - self.reference) > reach + self.max_step:
                return False  # further than physics allows in one step
        return self._accept(value, now)

    def _agree(self) -> bool:
        values = [v for v, _ in self._candidates]
        span = self._candidates[-1][1] - self._candidates[0][1]
        return max(values) - min(values) <= self.max_rate * max(span, _MIN_ELAPSED_S)

    def _accept(self, value: float, now: float) -> bool:
        self.reference = value
        self.reference_time = now
        self._candidates.clear()
        return True
