"""Everything that runs in the office: the archive, and (as they move here) ingest, gaps, export.

The bus's side stays in ``busd/``, ``drivers/`` and ``telemetry/``; the office shares only the
record and event models with it.
"""
