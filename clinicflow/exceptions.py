"""Kept for code written against the old path: the root error lives in core.errors (the bottom layer)."""

from core.errors import ClinicflowError, SettingsError  # noqa: F401
