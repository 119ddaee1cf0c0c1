"""Kept for code written against the old path: the ingest stage lives in stages.ingest."""

from stages.ingest import *  # noqa: F401,F403
from stages.ingest import (  # noqa: F401
    IngestReport,
    StopFlag,
    default_land,
    default_publish,
    file_batches,
    landing_config,
    run_ingest,
    run_load,
    writer,
)
