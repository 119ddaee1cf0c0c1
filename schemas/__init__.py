"""The event contract v1 (contract/EVENTS.md) as pydantic v2 models."""
