"""The bottom layer: settings and the root error. Imports nothing else of the project."""
