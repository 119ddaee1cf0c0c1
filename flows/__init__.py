"""Prefect flows: thin wrappers over plain functions in the other packages."""
