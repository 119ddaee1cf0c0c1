"""PHQ-9 and GAD-7 scoring (CLINICAL_REFERENCE.md, "Measurement-based care")."""

from __future__ import annotations

from collections.abc import Sequence

PHQ9_BANDS = ((20, "severe"), (15, "moderately_severe"), (10, "moderate"), (5, "mild"), (0, "minimal"))
GAD7_BANDS = ((15, "severe"), (10, "moderate"), (5, "mild"), (0, "minimal"))


def _checked(items: Sequence[int], n: int, name: str) -> Sequence[int]:
    if len(items) != n or any(not 0 <= i <= 3 for i in items):
        raise ValueError(f"{name} needs exactly {n} item scores of 0..3, got {list(items)}")
    return items


def phq9_total(items: Sequence[int]) -> int:
    """0..27."""
    return sum(_checked(items, 9, "PHQ-9"))


def phq9_item9(items: Sequence[int]) -> int:
    """Thoughts of self-harm; above 0 needs a same-day assessment by a person."""
    return _checked(items, 9, "PHQ-9")[8]


def phq9_severity(total: int) -> str:
    """minimal 0-4, mild 5-9, moderate 10-14, moderately_severe 15-19, severe 20-27."""
    if not 0 <= total <= 27:
        raise ValueError(f"a PHQ-9 total is 0..27, got {total}")
    return next(band for floor, band in PHQ9_BANDS if total >= floor)


def gad7_total(items: Sequence[int]) -> int:
    """0..21."""
    return sum(_checked(items, 7, "GAD-7"))


def gad7_severity(total: int) -> str:
    """minimal 0-4, mild 5-9, moderate 10-14, severe 15-21."""
    if not 0 <= total <= 21:
        raise ValueError(f"a GAD-7 total is 0..21, got {total}")
    return next(band for floor, band in GAD7_BANDS if total >= floor)
