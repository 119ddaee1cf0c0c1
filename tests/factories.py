"""The example events live in schemas.examples (benchmarks use them too); tests import them from here."""

from schemas.examples import ALL_TYPES, BP, NOW, SCREENING, event, payload, racemic_session, raw, ts  # noqa: F401
