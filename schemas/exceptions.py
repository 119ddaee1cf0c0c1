"""Errors of the schemas package. Invalid events are values (Rejection), not these."""

from core.errors import ClinicflowError


class SchemaError(ClinicflowError):
    """The contract's models or their exported JSON Schema cannot be used as asked."""
