"""The service schedule: cyclic routes per municipality, day plans, make-ups and coverage.

- :mod:`office.schedule.model`: the schedule file (TOML), validated, errors naming the key;
- :mod:`office.schedule.cycles`: when a point is due (weekly, fortnightly, monthly);
- :mod:`office.schedule.generate` and :mod:`office.schedule.day`: each bus's day plan, ordered
  and checked against the bus's energy model (:mod:`office.schedule.energy`);
- :mod:`office.schedule.proposals`: missed visits offered for the next reserve day;
- :mod:`office.schedule.coverage`: the monthly coverage report per place;
- :mod:`office.schedule.cli`: ``busd office plan …``.
"""
