"""The DuckDB warehouse: migrations, landing, analyst views."""
