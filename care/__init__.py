"""The care plan (contract/CARE_PLAN.md): follow-up tasks and clinical alerts, derived from history."""
