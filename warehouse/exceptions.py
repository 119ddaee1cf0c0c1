"""Errors of the warehouse package."""

from clinicflow.exceptions import ClinicflowError


class WarehouseError(ClinicflowError):
    """The DuckDB warehouse cannot be opened, migrated or written."""


class WarehouseLockedError(WarehouseError):
    """Another process holds the warehouse for writing (DuckDB allows one writer per file)."""
