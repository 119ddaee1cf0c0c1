"""Errors of the care package."""

from core.errors import ClinicflowError


class CareError(ClinicflowError):
    """The care plan could not be derived or dispatched."""


class ChannelError(CareError):
    """An outreach channel (Kafka topic, SMS or e-mail provider) refused or failed a message."""
