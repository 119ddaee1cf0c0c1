"""One spec per typed table: the rows each event type lands, derived in SQL from its validated JSON.

The JSON was produced by the models (model_dump_json), so every path exists with the right
type. Each payload is parsed once, by json_transform into a struct whose shape is derived
from the pydantic payload model, and the typed columns are read off the struct: column-wise,
in DuckDB, no Python per event.

A new payload field is: the model's field, its column here (name, type, expression over the
payload struct `p`), a migration that adds the column, and the docs. The INSERT names its
columns from the spec, and a test checks the spec against the tables and the models.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from uuid import UUID

from pydantic import BaseModel

from schemas.events import EVENT_MODELS, SCREENING_FIELDS

COMMON = ("event_id", "patient_id", "occurred_at")
SCREENING = SCREENING_FIELDS


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # the DuckDB type in the table
    expr: str  # SQL over the payload struct `p` (and the envelope's clinic_id)


@dataclass(frozen=True)
class TableSpec:
    table: str
    columns: tuple[Column, ...]


def c(name: str, type_: str, expr: str | None = None) -> Column:
    """A column read straight off the payload struct unless an expression is given."""
    return Column(name, type_, expr or f"p.{name}")


def bp(prefix: str, field: str) -> tuple[Column, Column]:
    return c(f"{prefix}_systolic", "INTEGER", f"p.{field}.systolic"), c(
        f"{prefix}_diastolic", "INTEGER", f"p.{field}.diastolic"
    )


def phq9_gad7() -> tuple[Column, ...]:
    return (
        c("phq9_items", "INTEGER[]"),
        c("phq9_total", "INTEGER", "list_sum(p.phq9_items)"),
        c("phq9_item9", "INTEGER", "p.phq9_items[9]"),
        c("gad7_items", "INTEGER[]"),
        c("gad7_total", "INTEGER", "list_sum(p.gad7_items)"),
    )


CLINIC = c("clinic_id", "VARCHAR", "clinic_id")
# fmt: off
SPEC: dict[str, TableSpec] = {
    "patient.registered": TableSpec("patients_registered", (
        CLINIC, c("timezone", "VARCHAR"), c("birth_year", "INTEGER"),
        c("consent_sms", "BOOLEAN", "p.consent.sms"), c("consent_email", "BOOLEAN", "p.consent.email"),
        c("consent_phone", "BOOLEAN", "p.consent.phone"), c("preferred_channel", "VARCHAR"),
        c("quiet_start", "VARCHAR", "p.quiet_hours.start"), c("quiet_end", "VARCHAR", "p.quiet_hours.end"),
    )),
    "consent.updated": TableSpec("consent_updates", (
        c("sms", "BOOLEAN"), c("email", "BOOLEAN"), c("phone", "BOOLEAN"),
    )),
    "intake.assessed": TableSpec("intake_assessments", (
        c("diagnosis_codes", "VARCHAR[]"), c("failed_antidepressant_trials", "INTEGER"), *phq9_gad7(),
        *bp("bp", "blood_pressure"), *(c(k, "BOOLEAN", f"p.screening.{k}") for k in SCREENING),
    )),
    "consult.completed": TableSpec("consults", (
        c("clinician_id", "VARCHAR"), c("decision", "VARCHAR"), c("reason_code", "VARCHAR"),
    )),
    "rems.enrolled": TableSpec("rems_enrollments", (c("rems_patient_id", "VARCHAR"), c("enrolled_on", "DATE"))),
    "session.scheduled": TableSpec("sessions_scheduled", (
        c("session_id", "VARCHAR"), c("modality", "VARCHAR"), c("scheduled_for", "TIMESTAMPTZ"),
        c("phase", "VARCHAR"),
    )),
    "session.completed": TableSpec("sessions_completed", (
        CLINIC, c("session_id", "VARCHAR"), c("modality", "VARCHAR"), c("phase", "VARCHAR"),
        c("started_at", "TIMESTAMPTZ"), c("ended_at", "TIMESTAMPTZ"), c("dose_mg", "INTEGER"),
        c("lot_number", "VARCHAR"), c("weight_kg", "DOUBLE"), c("dose_mg_per_kg", "DOUBLE"),
        c("infusion_minutes", "INTEGER"), *bp("bp_pre", "bp_pre"), *bp("bp_40min", "bp_40min"),
        *bp("bp_discharge", "bp_discharge"), c("spo2_min", "INTEGER"), c("cadss_total", "INTEGER"),
        c("moaa_s_min", "INTEGER"), c("sedation", "BOOLEAN"), c("dissociation", "BOOLEAN"),
        c("respiratory_depression", "BOOLEAN"), c("adverse_events", "JSON", "to_json(p.adverse_events)"),
    )),
    "session.cancelled": TableSpec("sessions_cancelled", (c("session_id", "VARCHAR"), c("reason", "VARCHAR"))),
    "rems.form_submitted": TableSpec("rems_forms", (c("session_id", "VARCHAR"), c("submitted_on", "DATE"))),
    "checkin.completed": TableSpec("checkins", (
        c("task_id", "VARCHAR"), *phq9_gad7(), c("side_effects", "VARCHAR[]"), c("channel", "VARCHAR"),
    )),
    "adverse_event.reported": TableSpec("adverse_event_reports", (
        c("session_id", "VARCHAR"), c("code", "VARCHAR"), c("severity", "VARCHAR"), c("onset_at", "TIMESTAMPTZ"),
    )),
    "outreach.status": TableSpec("outreach_statuses", (
        c("outreach_id", "VARCHAR"), c("status", "VARCHAR"), c("channel", "VARCHAR"),
    )),
    "alert.acknowledged": TableSpec("alert_acknowledgements", (
        c("alert_id", "VARCHAR"), c("staff_id", "VARCHAR", "p.by"),
    )),
    "alert.resolved": TableSpec("alert_resolutions", (
        c("alert_id", "VARCHAR"), c("staff_id", "VARCHAR", "p.by"), c("resolution", "VARCHAR"),
    )),
}
# fmt: on

# --- the payload struct, from the pydantic model ------------------------------------------
_SCALARS = {
    str: "VARCHAR",
    int: "INTEGER",
    float: "DOUBLE",
    bool: "BOOLEAN",
    datetime: "TIMESTAMPTZ",
    date: "DATE",
    UUID: "VARCHAR",
}


def duck_type(annotation) -> object:
    """The json_transform shape of a model field's annotation."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return duck_type(args[0])
    if origin in (typing.Union, types.UnionType):
        shapes = [duck_type(a) for a in args if a is not type(None)]
        return _merge(shapes)
    if origin is typing.Literal:
        return "INTEGER" if all(isinstance(a, int) and not isinstance(a, bool) for a in args) else "VARCHAR"
    if origin is list:
        return [duck_type(args[0])]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return struct_of(annotation)
    return _SCALARS[annotation]


def _merge(shapes: list) -> object:
    """One shape for a union: the members' struct fields together (the two session modalities)."""
    if all(isinstance(s, dict) for s in shapes):
        merged: dict = {}
        for s in shapes:
            merged.update(s)
        return merged
    return shapes[0]


def struct_of(model: type[BaseModel]) -> dict:
    return {name: duck_type(f.annotation) for name, f in model.model_fields.items()}


def payload_shape(event_type: str) -> dict:
    return duck_type(EVENT_MODELS[event_type].model_fields["payload"].annotation)


@cache
def typed_select(etype: str, source: str = "fresh") -> str:
    """The SELECT of one event type's typed rows, in the table's column order, from `source`.

    Built once per (type, source): walking the payload model for its shape is per process, not per batch.
    """
    spec = SPEC[etype]
    shape = json.dumps(payload_shape(etype)).replace("'", "''")
    exprs = ", ".join((*COMMON, *(f"{col.expr} AS {col.name}" for col in spec.columns)))
    return f"""SELECT {exprs}
        FROM (SELECT event_id, patient_id, occurred_at, clinic_id,
                     json_transform(event->'$.payload', '{shape}') AS p
              FROM {source} WHERE event_type = '{etype}')"""


@cache
def column_names(etype: str) -> str:
    """The typed table's columns as typed_select yields them, for a named INSERT."""
    return ", ".join((*COMMON, *(col.name for col in SPEC[etype].columns)))
