"""Consent as of an instant, and the channel a patient task goes out on."""

from __future__ import annotations

from datetime import datetime

from care.history import PatientHistory

CHANNEL_ORDER = ("sms", "email", "phone")


def consent_at(h: PatientHistory, when: datetime) -> dict[str, bool]:
    """Channels consented at `when`: the registration's consent, then every change up to `when`."""
    if not h.registrations:
        return {}
    regs = sorted(h.registrations, key=lambda r: (r.occurred_at, r.event_id))
    base = [r for r in regs if r.occurred_at <= when] or regs[:1]
    reg = base[-1]
    state = dict(reg.consent)
    for change in sorted(h.consent_changes, key=lambda c: (c.occurred_at, c.event_id)):
        if reg.occurred_at < change.occurred_at <= when:
            state.update(change.changes)
    return state


def channel_at(h: PatientHistory, when: datetime) -> str | None:
    """The preferred channel if consented, else the first consented of sms, email, phone; None if none."""
    state = consent_at(h, when)
    reg = h.registration
    if reg is not None and state.get(reg.preferred_channel):
        return reg.preferred_channel
    return next((c for c in CHANNEL_ORDER if state.get(c)), None)
