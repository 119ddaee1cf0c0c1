"""Kept for code written against the old path: Message lives in schemas.messages."""

from schemas.messages import Message  # noqa: F401
