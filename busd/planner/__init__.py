"""The SOC-aware stop planner.

Pure parts: energy (the model), model (instances and how an itinerary is
judged), search (exact and heuristic), projection (plan + situation ->
instance), proposal and i18n (what the driver reads), core (decisions and
stability). The supervised component is in ``component``; the CLI hook in ``cli``.
"""
