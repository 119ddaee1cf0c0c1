"""Nothing phones home: a clinic's network that carries patient data sees only its broker,
its Prefect server and its catalog.

Prefect's SDK telemetry, its server's analytics and Great Expectations' usage statistics
are on by default upstream. They are switched off here, before either library is used, for
every process that imports the project; an operator who wants them sets the variables.
"""

from __future__ import annotations

import os

OFF = {
    "DO_NOT_TRACK": "1",  # Prefect SDK telemetry (and any tool honouring the convention)
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # the Prefect server's heartbeat to Prefect
    "GX_ANALYTICS_ENABLED": "false",  # Great Expectations' usage statistics
}


def no_phone_home() -> None:
    """Default every analytics switch to off (an explicit environment value wins)."""
    for name, value in OFF.items():
        os.environ.setdefault(name, value)
