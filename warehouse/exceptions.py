"""Errors of the warehouse package."""

from core.errors import ClinicflowError


class WarehouseError(ClinicflowError):
    """The DuckDB warehouse cannot be opened, migrated or written."""


class WarehouseLockedError(WarehouseError):
    """Another process holds the warehouse for writing (DuckDB allows one writer per file)."""


class WarehouseBusyError(WarehouseError):
    """Another writing flow holds the warehouse-writer slot longer than we may wait."""


class CatalogSetupError(WarehouseError):
    """The lake's catalog server cannot be installed, initialised, started or reached."""


class PartitionsLostError(WarehouseError):
    """A worker's batch came from partitions another worker has taken over: the batch is not landed."""
