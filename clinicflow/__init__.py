"""clinicflow: Kafka events from a ketamine clinic, validated, landed in DuckDB, followed up."""

__version__ = "0.1.0"
