"""The care plan's numbers, as one small frozen object built at the edge and passed down.

Care rules, the planner and outreach read this, never the whole settings: what a rule depends
on is visible in one place, and a test can build a policy without configuring Kafka or paths.
Every value comes from a `CLINICFLOW_CARE_*` setting of the same name (docs/SETTINGS.md), so the
rules and the analysts' views (which get the outcome and REMS thresholds as parameters) share
one definition.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class CarePolicy:
    plan_delay_s: float
    plan_chunk_patients: int
    day1_hours: int
    month_days: tuple[int, int, int, int]
    rems_form_days: int
    quiet_start: str
    quiet_end: str
    expire_days: int
    checkin_match_days: int
    bp_crisis_systolic: int
    bp_crisis_diastolic: int
    spo2_min: int
    rems_monitoring_minutes: int
    dosing_bp_systolic: int
    dosing_bp_diastolic: int
    worsening_points: int
    item9_threshold: int
    escalate_urgent_level1_minutes: int
    escalate_urgent_level2_minutes: int
    escalate_high_level1_minutes: int
    escalate_high_level2_minutes: int
    escalate_routine_level1_minutes: int
    escalate_routine_level2_minutes: int
    escalate_max_age_days: int
    outcome_min_baseline: int
    remission_below: int
    alerts_topic: str

    def escalation_minutes(self) -> dict[tuple[str, int], int]:
        """{(severity, level): minutes after the episode opened}, for the levels that are set."""
        out = {}
        for sev in ("urgent", "high", "routine"):
            for level in (1, 2):
                minutes = getattr(self, f"escalate_{sev}_level{level}_minutes")
                if minutes:
                    out[(sev, level)] = minutes
        return out

    @classmethod
    def from_settings(cls, settings) -> CarePolicy:
        """From the settings object: each field is the setting `care_<field>`; alerts go to topic_alerts."""
        values = {f.name: getattr(settings, f"care_{f.name}") for f in fields(cls) if f.name != "alerts_topic"}
        return cls(**values, alerts_topic=settings.topic_alerts)


def as_policy(policy_or_settings) -> CarePolicy:
    """A policy, from a policy or from settings (callers at the edge may hold either)."""
    if isinstance(policy_or_settings, CarePolicy):
        return policy_or_settings
    return CarePolicy.from_settings(policy_or_settings)
