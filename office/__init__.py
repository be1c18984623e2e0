"""Everything that runs in the office: the archive, the ingest workers, the live table, the CLI.

The bus's side stays in ``busd/``, ``drivers/`` and ``telemetry/``; the office shares only the
payload models (``telemetry.models``) and the broker settings (``telemetry.mqtt``) with it.
"""
