"""Many simulated operating days in-process: the planner judged against an oracle (issue 17)."""
