"""A patient's history as plain values, loaded set-wise for all patients a batch touched."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(frozen=True)
class Registration:
    event_id: str
    occurred_at: datetime
    timezone: str
    consent: dict[str, bool]
    preferred_channel: str
    quiet_start: str | None
    quiet_end: str | None


@dataclass(frozen=True)
class ConsentChange:
    event_id: str
    occurred_at: datetime
    changes: dict[str, bool]  # only the channels that changed


@dataclass(frozen=True)
class Phq9:
    event_id: str
    occurred_at: datetime
    source: str  # intake | checkin
    total: int
    item9: int


@dataclass(frozen=True)
class Screening:
    event_id: str
    occurred_at: datetime
    contraindicated: bool


@dataclass(frozen=True)
class Session:
    event_id: str
    occurred_at: datetime
    clinic_id: str
    session_id: str
    modality: str
    started_at: datetime
    ended_at: datetime
    bps: tuple[tuple[int, int], ...]  # every reading taken: pre, 40 min (if any), discharge
    bp_pre: tuple[int, int]
    spo2_min: int | None
    respiratory_depression: bool
    serious_adverse_event: bool


@dataclass(frozen=True)
class Cancellation:
    event_id: str
    occurred_at: datetime
    session_id: str


@dataclass(frozen=True)
class Checkin:
    event_id: str
    occurred_at: datetime
    task_id: str | None


@dataclass(frozen=True)
class ReportedAdverseEvent:
    event_id: str
    occurred_at: datetime
    serious: bool


@dataclass
class PatientHistory:
    patient_id: str
    clinic_id: str = ""
    registrations: list[Registration] = field(default_factory=list)
    consent_changes: list[ConsentChange] = field(default_factory=list)
    phq9: list[Phq9] = field(default_factory=list)
    screenings: list[Screening] = field(default_factory=list)
    rems_enrolled_on: list[date] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    cancellations: list[Cancellation] = field(default_factory=list)
    rems_forms: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # session_id -> (event, at)
    checkins: list[Checkin] = field(default_factory=list)
    reported_aes: list[ReportedAdverseEvent] = field(default_factory=list)

    @property
    def registration(self) -> Registration | None:
        """The latest registration (by occurred_at, then event_id): order of arrival never matters."""
        return max(self.registrations, key=lambda r: (r.occurred_at, r.event_id), default=None)
