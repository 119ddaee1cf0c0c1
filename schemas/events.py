"""Event contract v1: the envelope, the 14 inbound event types and the 2 the pipeline produces.

Each event type is one model with a literal `event_type`; `Event` is their
discriminated union, so validation dispatches on the tag in Rust instead of
trying models in turn.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Union
from uuid import UUID

from pydantic import Field, ValidationInfo, field_validator, model_validator

from schemas.common import (
    AdverseEvent,
    AdverseEventCode,
    BloodPressure,
    Channel,
    Day,
    Gad7Items,
    OccurredAt,
    Phase,
    Phq9Items,
    SessionId,
    Severity,
    Strict,
    Timestamp,
    iana_zones,
)

MAX_SESSION_HOURS = 12


# --- the envelope ---------------------------------------------------------------
class Envelope(Strict):
    """Fields every event carries."""

    event_id: UUID = Field(description="A UUID; the idempotency key: the same id twice lands once.")
    # An int bounded to 1 rather than Literal[1]: in JSON `true` would pass a literal 1 check.
    schema_version: int = Field(ge=1, le=1, json_schema_extra={"const": 1}, description="Contract version; 1.")
    occurred_at: OccurredAt = Field(description="When it happened: RFC 3339 with an explicit offset.")
    clinic_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,31}$", description="The clinic, e.g. `austin-1`.")
    patient_id: str = Field(
        pattern=r"^[A-Za-z0-9_-]{4,64}$", description="Publisher's surrogate key; never a name, MRN, phone or e-mail."
    )
    source: str = Field(min_length=1, max_length=64, description="The publishing system.")
    correlation_id: str | None = Field(
        default=None, max_length=128, description="Optional; up to 128 characters. null is taken as absent."
    )


# --- intake family ------------------------------------------------------------------
class Consent(Strict):
    """Consent per outreach channel; all three present."""

    sms: bool = Field(description="Text messages allowed.")
    email: bool = Field(description="E-mail allowed.")
    phone: bool = Field(description="Phone calls allowed.")


class QuietHours(Strict):
    """Local hours during which no patient message is sent."""

    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM local time quiet hours begin.")
    end: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM local time quiet hours end.")


class PatientRegisteredPayload(Strict):
    """A new patient."""

    timezone: str = Field(min_length=1, max_length=64, description="IANA zone name, e.g. America/Chicago.")
    birth_year: int = Field(ge=1900, description="1900 to the current year; the year only.")
    consent: Consent = Field(description="Outreach consent per channel.")
    preferred_channel: Channel = Field(description="Where the patient prefers to be reached.")
    quiet_hours: QuietHours | None = Field(default=None, description="Default 21:00 to 08:00 local.")

    @field_validator("timezone")
    @classmethod
    def _iana(cls, v: str) -> str:
        if v not in iana_zones():
            raise ValueError(f"{v!r} is not an IANA time zone name; use one like 'America/Chicago'")
        return v

    @field_validator("birth_year")
    @classmethod
    def _not_future(cls, v: int, info: ValidationInfo) -> int:
        now: datetime | None = (info.context or {}).get("now")
        if now is not None and v > now.year:
            raise ValueError(f"{v} is after the current year {now.year}")
        return v


class ConsentUpdatedPayload(Strict):
    """A change of consent; absent means unchanged. STOP arrives as sms: false."""

    sms: bool | None = Field(default=None, description="New SMS consent, or absent.")
    email: bool | None = Field(default=None, description="New e-mail consent, or absent.")
    phone: bool | None = Field(default=None, description="New phone consent, or absent.")

    @model_validator(mode="after")
    def _at_least_one(self) -> ConsentUpdatedPayload:
        if self.sms is None and self.email is None and self.phone is None:
            raise ValueError("at least one of sms, email, phone must be present")
        return self


class Screening(Strict):
    """Contraindication screening; every answer present."""

    aneurysmal_vascular_disease: bool = Field(description="Contraindication.")
    arteriovenous_malformation: bool = Field(description="Contraindication.")
    intracerebral_hemorrhage_history: bool = Field(description="Contraindication.")
    ketamine_hypersensitivity: bool = Field(description="Contraindication (esketamine or ketamine).")
    pregnant: bool = Field(description="Not advised in pregnancy.")
    active_substance_use_disorder: bool = Field(description="Screened for.")
    psychosis_history: bool = Field(description="Screened for.")


SCREENING_FIELDS: tuple[str, ...] = tuple(Screening.model_fields)


class IntakeAssessedPayload(Strict):
    """The intake assessment, with the PHQ-9 baseline."""

    diagnosis_codes: list[Annotated[str, Field(pattern=r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$")]] = Field(
        min_length=1, max_length=10, description="1 to 10 ICD-10-CM codes, e.g. F33.2."
    )
    failed_antidepressant_trials: int = Field(ge=0, le=30, description="0..30.")
    phq9_items: Phq9Items = Field(description="The baseline PHQ-9.")
    gad7_items: Gad7Items | None = Field(default=None, description="GAD-7, optional.")
    blood_pressure: BloodPressure = Field(description="At intake.")
    screening: Screening = Field(description="Contraindication screening.")


class ConsultCompletedPayload(Strict):
    """A clinician's treatment decision."""

    clinician_id: str = Field(min_length=1, max_length=64, description="The clinician's id.")
    decision: Literal["esketamine_nasal", "racemic_iv", "not_eligible", "deferred"] = Field(description="The decision.")
    reason_code: Literal[
        "clinical_fit", "contraindication", "patient_preference", "coverage", "needs_more_information"
    ] = Field(description="Why.")


class RemsEnrolledPayload(Strict):
    """Spravato REMS patient enrollment."""

    rems_patient_id: str = Field(min_length=1, max_length=64, description="The REMS patient id.")
    enrolled_on: Day = Field(description="YYYY-MM-DD.")


# --- session family -------------------------------------------------------------------
class SessionScheduledPayload(Strict):
    """A treatment session on the calendar."""

    session_id: SessionId
    modality: Literal["esketamine_nasal", "racemic_iv"] = Field(description="The treatment.")
    scheduled_for: Timestamp = Field(description="When the session is planned.")
    phase: Phase = Field(description="induction, maintenance or booster.")


class _SessionCompletedBase(Strict):
    session_id: SessionId
    phase: Phase = Field(description="induction, maintenance or booster.")
    started_at: Timestamp = Field(description="Dosing start (first device or infusion start).")
    ended_at: Timestamp = Field(description="Discharge, the end of monitoring; after started_at, within 12 h.")
    bp_pre: BloodPressure = Field(description="Before dosing.")
    bp_discharge: BloodPressure = Field(description="Before discharge.")
    spo2_min: int | None = Field(default=None, ge=50, le=100, description="Lowest SpO2 %, 50..100.")
    cadss_total: int | None = Field(default=None, ge=0, le=92, description="CADSS total, 0..92.")
    moaa_s_min: int | None = Field(default=None, ge=0, le=5, description="Lowest MOAA/S, 0..5.")
    sedation: bool = Field(description="Sedation observed.")
    dissociation: bool = Field(description="Dissociation observed.")
    respiratory_depression: bool = Field(description="Respiratory depression observed.")
    adverse_events: list[AdverseEvent] = Field(max_length=50, description="May be empty.")

    @field_validator("ended_at")
    @classmethod
    def _after_start(cls, v: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("started_at")
        if start is None:
            return v
        if v <= start:
            raise ValueError(f"ended_at {v.isoformat()} must be after started_at {start.isoformat()}")
        if (v - start).total_seconds() > MAX_SESSION_HOURS * 3600:
            raise ValueError(
                f"ended_at is {(v - start).total_seconds() / 3600:.1f} h after started_at; "
                f"at most {MAX_SESSION_HOURS} h"
            )
        return v


class EsketamineSessionCompleted(_SessionCompletedBase):
    """A completed esketamine (Spravato) nasal session."""

    modality: Literal["esketamine_nasal"] = Field(description="esketamine_nasal.")
    dose_mg: Literal[28, 56, 84] = Field(description="28, 56 or 84 mg (28 mg per device).")
    lot_number: str = Field(min_length=1, max_length=32, description="Device lot number.")
    bp_40min: BloodPressure = Field(description="About 40 minutes after dosing; required for esketamine.")


class RacemicSessionCompleted(_SessionCompletedBase):
    """A completed racemic ketamine IV infusion."""

    modality: Literal["racemic_iv"] = Field(description="racemic_iv.")
    weight_kg: float = Field(ge=30, le=300, description="Body weight, 30..300 kg.")
    dose_mg_per_kg: float = Field(ge=0.05, le=1.5, description="0.05..1.5 mg/kg.")
    infusion_minutes: int = Field(ge=10, le=180, description="10..180 minutes.")
    bp_40min: BloodPressure | None = Field(default=None, description="Optional for racemic.")


SessionCompletedPayload = Annotated[
    Union[EsketamineSessionCompleted, RacemicSessionCompleted], Field(discriminator="modality")
]


class SessionCancelledPayload(Strict):
    """A session that did not happen."""

    session_id: SessionId
    reason: Literal["bp_elevated", "no_show", "patient_request", "clinical_hold", "other"] = Field(
        description="Why it was cancelled."
    )


class RemsFormSubmittedPayload(Strict):
    """The REMS Patient Monitoring Form for a session was filed."""

    session_id: SessionId
    submitted_on: Day = Field(description="YYYY-MM-DD.")


# --- follow-up family ------------------------------------------------------------------
class CheckinCompletedPayload(Strict):
    """A patient's check-in answers."""

    task_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="The follow-up task answered, when the link carried one.",
    )
    phq9_items: Phq9Items | None = Field(default=None, description="PHQ-9, optional.")
    gad7_items: Gad7Items | None = Field(default=None, description="GAD-7, optional.")
    side_effects: list[AdverseEventCode] = Field(max_length=20, description="Codes as for adverse events.")
    channel: Literal["sms", "email", "phone", "in_clinic"] = Field(description="How it was answered.")

    @model_validator(mode="after")
    def _some_score(self) -> CheckinCompletedPayload:
        if self.phq9_items is None and self.gad7_items is None:
            raise ValueError("at least one of phq9_items, gad7_items must be present")
        return self


class AdverseEventReportedPayload(Strict):
    """An adverse event reported after a session."""

    session_id: str | None = Field(default=None, min_length=1, max_length=64, description="Related session.")
    code: AdverseEventCode = Field(description="What happened.")
    severity: Severity = Field(description="How bad.")
    onset_at: Timestamp = Field(description="When it began.")


class OutreachStatusPayload(Strict):
    """Delivery news from the messaging provider."""

    outreach_id: str = Field(min_length=1, max_length=128, description="The outreach.requested it is about.")
    status: Literal["delivered", "failed", "replied", "opted_out"] = Field(
        description="opted_out also withdraws consent for the channel."
    )
    channel: Channel = Field(description="The channel used.")


# --- alert actions family (contract/ALERTS.md): the on-call queue answers alerts ----------------
StaffId = Annotated[str, Field(min_length=1, max_length=64)]
Resolution = Literal["actioned", "no_action_needed", "false_positive", "duplicate"]


class AlertAcknowledgedPayload(Strict):
    """Someone on call has seen the alert's episode and owns it."""

    alert_id: UUID = Field(description="Any alert of the episode (a UUID from a clinical.alert message).")
    by: StaffId = Field(description="The staff member's id, 1 to 64 characters; never a name.")


class AlertResolvedPayload(Strict):
    """The alert's episode is closed; acknowledges it too when nobody had."""

    alert_id: UUID = Field(description="Any alert of the episode (a UUID from a clinical.alert message).")
    by: StaffId = Field(description="The staff member's id, 1 to 64 characters; never a name.")
    resolution: Resolution = Field(description="actioned, no_action_needed, false_positive or duplicate.")


# --- produced by the pipeline ----------------------------------------------------------------
CheckinTemplate = Literal["checkin_day1", "checkin_month1", "checkin_month3", "checkin_month6", "checkin_month12"]


class OutreachRequestedPayload(Strict):
    """A check-in to send. No clinical content, by design."""

    outreach_id: str = Field(min_length=1, max_length=128, description="Deterministic: one task, one id.")
    channel: Channel = Field(description="Consented channel to use.")
    template: CheckinTemplate = Field(description="Message template.")
    task_id: str = Field(min_length=1, max_length=128, description="The follow-up task.")
    send_after: Timestamp = Field(description="UTC, already outside the patient's quiet hours.")


class ClinicalAlertPayload(Strict):
    """An alert for the on-call clinician's queue."""

    alert_id: str = Field(min_length=1, max_length=128, description="Deterministic from source event and reason.")
    severity: Literal["urgent", "high", "routine"] = Field(description="urgent, high or routine.")
    reason: Literal[
        "phq9_item9_positive",
        "bp_crisis",
        "serious_adverse_event",
        "respiratory_depression",
        "rems_monitoring_short",
        "dosed_above_bp_threshold",
        "dosed_despite_contraindication",
        "esketamine_without_rems_enrollment",
        "rems_form_overdue",
        "worsening",
    ] = Field(description="The care-plan rule that fired.")
    source_event_id: str = Field(min_length=1, max_length=128, description="The event (or task) behind it.")
    raised_at: Timestamp = Field(description="When the pipeline raised it.")
    action: Literal["raised", "repeated", "escalated", "withdrawn"] = Field(
        description="raised: first alert of an episode (page); repeated: a later alert joining an open or "
        "acknowledged episode (update); escalated: nobody acknowledged in time (page); withdrawn: a late "
        "event took away the alert's grounds (update)."
    )
    episode_id: UUID = Field(description="The episode (one patient, one reason, one open item in the queue).")
    occurrences: int = Field(ge=1, description="Alerts in the episode so far, 1 or more.")
    escalation_level: int = Field(ge=0, le=2, description="0 except on escalated (1 or 2).")


# --- one model per event type ------------------------------------------------------------------
def _event(name: str, tag: str, payload_type, doc: str):
    fields = {
        "__annotations__": {"event_type": Literal[tag], "payload": payload_type},
        "event_type": Field(description=f"`{tag}`."),
        "payload": Field(description="The event type's payload."),
        "__doc__": doc,
        "__module__": __name__,
    }
    return type(name, (Envelope,), fields)


PatientRegistered = _event("PatientRegistered", "patient.registered", PatientRegisteredPayload, "A new patient.")
ConsentUpdated = _event("ConsentUpdated", "consent.updated", ConsentUpdatedPayload, "Consent changed.")
IntakeAssessed = _event("IntakeAssessed", "intake.assessed", IntakeAssessedPayload, "Intake assessment.")
ConsultCompleted = _event("ConsultCompleted", "consult.completed", ConsultCompletedPayload, "Consult decision.")
RemsEnrolled = _event("RemsEnrolled", "rems.enrolled", RemsEnrolledPayload, "REMS enrollment.")
SessionScheduled = _event("SessionScheduled", "session.scheduled", SessionScheduledPayload, "Session planned.")
SessionCompleted = _event("SessionCompleted", "session.completed", SessionCompletedPayload, "Session done.")
SessionCancelled = _event("SessionCancelled", "session.cancelled", SessionCancelledPayload, "Session cancelled.")
RemsFormSubmitted = _event("RemsFormSubmitted", "rems.form_submitted", RemsFormSubmittedPayload, "REMS form filed.")
CheckinCompleted = _event("CheckinCompleted", "checkin.completed", CheckinCompletedPayload, "Check-in answered.")
AdverseEventReported = _event(
    "AdverseEventReported", "adverse_event.reported", AdverseEventReportedPayload, "Adverse event reported later."
)
OutreachStatus = _event("OutreachStatus", "outreach.status", OutreachStatusPayload, "Messaging provider news.")
AlertAcknowledged = _event(
    "AlertAcknowledged", "alert.acknowledged", AlertAcknowledgedPayload, "An alert's episode acknowledged."
)
AlertResolved = _event("AlertResolved", "alert.resolved", AlertResolvedPayload, "An alert's episode resolved.")
OutreachRequested = _event(
    "OutreachRequested", "outreach.requested", OutreachRequestedPayload, "Produced: a check-in to send."
)
ClinicalAlert = _event("ClinicalAlert", "clinical.alert", ClinicalAlertPayload, "Produced: a clinical alert.")

FAMILIES: dict[str, tuple[type[Envelope], ...]] = {
    "intake": (PatientRegistered, ConsentUpdated, IntakeAssessed, ConsultCompleted, RemsEnrolled),
    "sessions": (SessionScheduled, SessionCompleted, SessionCancelled, RemsFormSubmitted),
    "followups": (CheckinCompleted, AdverseEventReported, OutreachStatus),
    "alertactions": (AlertAcknowledged, AlertResolved),
    "outreach": (OutreachRequested,),
    "alerts": (ClinicalAlert,),
}
# The families the pipeline consumes, in the order of Settings.inbound_topics.
INBOUND_FAMILIES = ("intake", "sessions", "followups", "alertactions")
EVENT_MODELS: dict[str, type[Envelope]] = {
    m.model_fields["event_type"].annotation.__args__[0]: m for models in FAMILIES.values() for m in models
}
FAMILY_OF: dict[str, str] = {
    m.model_fields["event_type"].annotation.__args__[0]: fam for fam, models in FAMILIES.items() for m in models
}

Event = Annotated[Union[tuple(EVENT_MODELS.values())], Field(discriminator="event_type")]
