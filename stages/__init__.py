"""Stage cores: one plain function per stage (ingest, load, outreach, replay, data quality).

Tested without Prefect; `flows/` only decorates them, and the CLI calls a flow when
Prefect is in use and the core otherwise.
"""
