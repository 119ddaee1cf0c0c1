"""Kept for code written against the old path: the settings live in core.settings (the bottom layer)."""

from core.settings import *  # noqa: F401,F403
from core.settings import ENV_PREFIX, Settings, child_env, get_settings, settings_markdown  # noqa: F401
