"""`python -m clinicflow` is the `clinicflow` command."""

from clinicflow.cli import app

app()
