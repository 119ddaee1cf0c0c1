"""The one error every clinicflow error derives from.

Messages follow one rule: say what failed, then how to fix it.
"""


class ClinicflowError(Exception):
    """Base of every error raised by clinicflow."""


class SettingsError(ClinicflowError):
    """A setting is missing or invalid; the message names the variable."""
