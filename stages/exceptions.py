"""Errors of the stages."""

from core.errors import ClinicflowError


class StageError(ClinicflowError):
    """A stage failed; the message names the stage, what it was doing and the cause, with the fix."""
